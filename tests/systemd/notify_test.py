#!/usr/bin/python3
"""Starts `herald serve` the way systemd's Type=notify would, without systemd: a unix datagram
socket as NOTIFY_SOCKET and WATCHDOG_USEC in the environment. Asserts READY=1 (with the bound
port in STATUS=, and /healthz answering), watchdog pings at half the interval, STOPPING=1 on
SIGTERM, and exit status 0. Needs HERALD_BIN."""

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

WATCHDOG_USEC = 400_000  # herald should ping every 200 ms


def fail(message, log_path=None):
    print(f"FAIL: {message}")
    if log_path and os.path.exists(log_path):
        print("--- herald output ---")
        with open(log_path, encoding="utf-8", errors="replace") as f:
            print(f.read())
    sys.exit(1)


def receive(sock, deadline):
    """Returns the next notification as {key: value}, or None at the deadline."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return None
    sock.settimeout(remaining)
    try:
        data = sock.recv(4096)
    except socket.timeout:
        return None
    fields = {}
    for line in data.decode("utf-8", "replace").split("\n"):
        if "=" in line:
            key, value = line.split("=", 1)
            fields[key] = value
    return fields


def wait_for(sock, key, value, seconds, seen):
    deadline = time.monotonic() + seconds
    while True:
        fields = receive(sock, deadline)
        if fields is None:
            return None
        seen.append(fields)
        if fields.get(key) == value:
            return fields


def main():
    herald = os.environ.get("HERALD_BIN")
    if not herald or not os.access(herald, os.X_OK):
        fail(f"HERALD_BIN is not an executable: {herald!r}")
    work = tempfile.mkdtemp(prefix="herald-notify-")
    log_path = os.path.join(work, "herald.log")
    process = None
    try:
        token_hash = hashlib.sha256(os.urandom(32).hex().encode()).hexdigest()
        config = os.path.join(work, "herald.toml")
        with open(config, "w", encoding="utf-8") as f:
            f.write(
                '[server]\nlisten = "127.0.0.1:0"\npublic_url = "http://127.0.0.1:1"\n'
                f'[storage]\ndatabase = "{work}/state/herald.db"\n'
                f'[[tokens]]\nname = "ops"\nsha256 = "{token_hash}"\nscopes = ["admin"]\n'
            )
        sock_path = os.path.join(work, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(sock_path)

        env = dict(os.environ)
        env["NOTIFY_SOCKET"] = sock_path
        env["WATCHDOG_USEC"] = str(WATCHDOG_USEC)
        env.pop("WATCHDOG_PID", None)  # unset: sd_watchdog_enabled() then trusts WATCHDOG_USEC
        with open(log_path, "wb") as log:
            process = subprocess.Popen([herald, "serve", "--config", config], env=env,
                                       stdout=log, stderr=subprocess.STDOUT, cwd=work)
        seen = []

        ready = wait_for(sock, "READY", "1", 20, seen)
        if ready is None:
            fail(f"no READY=1 within 20 s (got {seen}, exit {process.poll()})", log_path)
        match = re.search(r"port (\d+)", ready.get("STATUS", ""))
        if not match:
            fail(f"READY=1 came without the port in STATUS=: {ready}", log_path)
        port = int(match.group(1))
        print(f"ok: READY=1 ({ready['STATUS']})")

        # READY promises a bound listener and a migrated database.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            if r.status != 200:
                fail(f"/healthz answered {r.status}", log_path)
        with opener.open(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
            if r.status != 200:
                fail(f"/readyz answered {r.status}", log_path)
        print("ok: /healthz and /readyz answer 200 after READY=1")

        pings = 0
        deadline = time.monotonic() + 2.0
        while pings < 2:
            fields = receive(sock, deadline)
            if fields is None:
                fail(f"{pings} WATCHDOG=1 within 2 s with WATCHDOG_USEC={WATCHDOG_USEC}", log_path)
            if fields.get("WATCHDOG") == "1":
                pings += 1
        print(f"ok: {pings} WATCHDOG=1 pings within 2 s")

        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        stopping = wait_for(sock, "STOPPING", "1", 10, seen)
        if stopping is None:
            fail("no STOPPING=1 within 10 s of SIGTERM", log_path)
        print("ok: STOPPING=1 after SIGTERM")
        try:
            code = process.wait(timeout=25)
        except subprocess.TimeoutExpired:
            fail("herald still running 25 s after SIGTERM (systemd would kill it at 30 s)",
                 log_path)
        if code != 0:
            fail(f"herald exited {code} after SIGTERM", log_path)
        print(f"ok: exit 0, {time.monotonic() - started:.2f} s after SIGTERM")
        print("PASS")
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
