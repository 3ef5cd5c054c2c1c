#!/usr/bin/python3
"""Ingest throughput with synchronous=FULL: events acknowledged per second at a given
concurrency, with latency percentiles and the group-commit batch size read from /metrics.

Starts its own herald (the binary given) on a temporary database with one client, one
contact and one rule, so every event also plans and stores one message. Nothing is delivered
anywhere (the email goes to a closed port and just retries).

    bench/ingest.py build/herald --events 2000 --concurrency 1
    bench/ingest.py build/herald --events 5000 --concurrency 32
"""
import argparse
import hashlib
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import TOKEN, call  # noqa: E402


def start(herald, workdir):
    config = os.path.join(workdir, "herald.toml")
    with open(config, "w") as f:
        f.write(f"""[server]
listen = "127.0.0.1:0"
[storage]
database = "{workdir}/herald.db"
[[tokens]]
name = "bench"
sha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"
scopes = ["admin", "audit", "ingest"]
[smtp]
url = "smtp://127.0.0.1:9"
from = "Herald <herald@msp.example>"
[log]
level = "info"
""")
    return benchlib.start_herald(herald, workdir, config)




def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("herald")
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=1)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as workdir:
        proc, port = start(args.herald, workdir)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port)
            call(conn, "PUT", "/v1/clients/acme", {"name": "Acme"})
            call(conn, "PUT", "/v1/clients/acme/contacts/dana",
                 {"name": "Dana", "roles": ["legal"], "email": "dana@acme.example"})
            call(conn, "PUT", "/v1/clients/acme/plan",
                 {"rules": [{"id": "r", "phases": ["containment"], "roles": ["legal"],
                             "channels": ["email"], "delay": "1h"}]})

            latencies = []
            lock = threading.Lock()
            per_worker = args.events // args.concurrency

            def worker(w):
                c = http.client.HTTPConnection("127.0.0.1", port)
                mine = []
                for i in range(per_worker):
                    body = {"event_id": f"e-{w}-{i}", "client": "acme",
                            "incident": {"id": f"INC-{w}-{i}", "severity": "high"},
                            "phase": "containment"}
                    t0 = time.perf_counter()
                    status, _ = call(c, "POST", "/v1/events", body)
                    mine.append(time.perf_counter() - t0)
                    if status != 202:
                        raise SystemExit(f"unexpected status {status}")
                with lock:
                    latencies.extend(mine)

            before = metrics(conn)
            t0 = time.perf_counter()
            threads = [threading.Thread(target=worker, args=(w,)) for w in range(args.concurrency)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - t0
            after = metrics(conn)
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    latencies.sort()
    n = len(latencies)
    commits = after["herald_store_commits_total"] - before["herald_store_commits_total"]
    writes = after["herald_store_committed_writes_total"] - before["herald_store_committed_writes_total"]
    print(f"events: {n}  concurrency: {args.concurrency}  elapsed: {elapsed:.2f} s")
    print(f"throughput: {n / elapsed:.0f} events/s acknowledged (synchronous=FULL)")
    print(f"latency: p50 {latencies[n // 2] * 1000:.2f} ms  p99 {latencies[int(n * 0.99)] * 1000:.2f} ms"
          f"  max {latencies[-1] * 1000:.2f} ms")
    print(f"group commit: {writes:.0f} writes in {commits:.0f} commits "
          f"({writes / max(commits, 1):.1f} writes per fsync'd commit)")


def metrics(conn):
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    out = {}
    for name in ("herald_store_commits_total", "herald_store_committed_writes_total"):
        m = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
        out[name] = float(m.group(1)) if m else 0.0
    return out


if __name__ == "__main__":
    main()
