"""What the benchmarks share: starting a herald on a config file, and one API call."""

import json
import os
import re
import subprocess
import sys
import time

TOKEN = "bench-token"


def start_herald(herald, workdir, config):
    """Starts `herald serve` on `config`; returns (process, port) once it listens."""
    log = open(os.path.join(workdir, "herald.log"), "w+")
    proc = subprocess.Popen([herald, "serve", "--config", config], stdout=log, stderr=log)
    deadline = time.time() + 30
    while time.time() < deadline:
        log.seek(0)
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", log.read())
        if m:
            return proc, int(m.group(1))
        time.sleep(0.02)
    proc.kill()
    sys.exit("herald did not start")


def call(conn, method, path, body=None):
    """One request with the benchmark token on a kept-alive connection: (status, body)."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers=headers)
    r = conn.getresponse()
    return r.status, r.read()
