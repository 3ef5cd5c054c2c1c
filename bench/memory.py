#!/usr/bin/python3
"""Herald's resident memory (VmRSS, and the peak VmHWM, from /proc/PID/status): idle, and with
100,000 scheduled messages.

Starts its own herald (the binary given) on examples/herald.toml (its listen address and
database moved to a temporary directory), then:

  1. idle after start: 5 s after it listens, nothing asked of it;
  2. idle with the example plan: after examples/acme-setup.sh (client acme: 10 contacts,
     2 endpoints, the plan of examples/acme-plan.json), 5 s later;
  3. with MESSAGES scheduled messages: a client "bulk" with 50 contacts (email) and 50 webhook
     endpoints and one rule reaching all of them with a 24 h delay, so each event stores 100
     messages that are not due for a day; MESSAGES / 100 events posted from 8 connections;
     measured 5 s after the last one was acknowledged, and again after 10 scrapes of /metrics
     (which counts the messages by status) and 10 pages of GET /v1/deliveries;
  4. the same database after a restart: 5 s after it listens again, then after the scrapes;
  5. on a database of REPORT_INCIDENTS incidents of the last 20 days (bench/reports.py's fill:
     15 delivered messages each, 50 clients), before and after the first of the once-a-minute
     report computations (the herald_report_* gauges over the last 30 days), and a minute later.

    bench/memory.py build/herald
    bench/memory.py build/herald --messages 1000000 --report-incidents 0
"""
import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import auth_header, must  # noqa: E402

DEMO_TOKEN = "demo-token"  # examples/herald.toml stores sha256("demo-token")
PER_EVENT = 100


def example_config(workdir):
    """examples/herald.toml with port 0 and the database in workdir; the bench token added."""
    with open(os.path.join(benchlib.SOURCE_DIR, "examples", "herald.toml")) as f:
        text = f.read()
    text = re.sub(r'(?m)^listen = .*$', 'listen = "127.0.0.1:0"', text)
    text = re.sub(r'(?m)^database = .*$', f'database = "{workdir}/herald.db"', text)
    path = os.path.join(workdir, "herald.toml")
    with open(path, "w") as f:
        f.write(text)
    return path


def settle_and_read(pid, seconds=5, port=None):
    """/proc's figures after `seconds`, with herald's own heap figures when `port` is given."""
    time.sleep(seconds)
    st = benchlib.proc_status(pid)
    if port is not None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        st.update(benchlib.memory_gauges(benchlib.metrics_text(conn)))
        conn.close()
    return st


def exercise(port):
    """What an operator's tools ask of an idle daemon: 10 /metrics scrapes, 10 pages of
    deliveries."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(10):
        benchlib.metrics_text(conn)
    for _ in range(10):
        conn.request("GET", "/v1/deliveries?client=bulk&limit=500",
                     headers={"Authorization": f"Bearer {DEMO_TOKEN}"})
        conn.getresponse().read()
    conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("herald")
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--report-incidents", type=int, default=30_000,
                    help="step 5's database (0 skips it)")
    args = ap.parse_args()
    events = args.messages // PER_EVENT
    rows = []

    def row(label, st):
        rows.append((label, st))
        heap = ""
        if "herald_heap_in_use_bytes" in st:
            heap = (f"   heap {st['herald_heap_in_use_bytes'] / 2**20:5.1f} + free "
                    f"{st['herald_heap_free_bytes'] / 2**20:5.1f} MiB (SQLite "
                    f"{st['herald_sqlite_memory_bytes'] / 2**20:4.1f})")
        print(f"  {label:<58} RSS {st['VmRSS'] / 1024:6.1f} MiB   peak {st['VmHWM'] / 1024:6.1f}"
              f" MiB   fds {st['fds']}{heap}", flush=True)

    with tempfile.TemporaryDirectory() as workdir:
        config = example_config(workdir)
        proc, port = benchlib.start_herald(args.herald, workdir, config)
        try:
            print(f"herald {args.herald} on examples/herald.toml; load average "
                  f"{benchlib.load_average()}")
            row("1. idle after start", settle_and_read(proc.pid, port=port))
            env = dict(os.environ, HERALD_URL=f"http://127.0.0.1:{port}",
                       HERALD_TOKEN=DEMO_TOKEN)
            subprocess.run([os.path.join(benchlib.SOURCE_DIR, "examples", "acme-setup.sh")],
                           env=env, check=True, capture_output=True)
            row("2. idle with the example plan (acme-setup.sh)", settle_and_read(proc.pid, port=port))

            conn = http.client.HTTPConnection("127.0.0.1", port)
            def put(path, body):
                must(conn, "PUT", path, body, token=DEMO_TOKEN)

            put("/v1/clients/bulk", {"name": "Bulk"})
            half = PER_EVENT // 2
            for i in range(half):
                put(f"/v1/clients/bulk/contacts/p{i}",
                    {"name": f"Person {i}", "roles": ["legal"],
                     "email": f"p{i}@bulk.example", "channels": ["email"]})
                put(f"/v1/clients/bulk/endpoints/h{i}",
                    {"type": "webhook", "url": f"http://127.0.0.1:9/h{i}"})
            put("/v1/clients/bulk/plan", {"rules": [
                {"id": "later", "phases": ["containment"], "min_severity": "low",
                 "roles": ["legal"], "channels": ["email"],
                 "endpoints": [f"h{i}" for i in range(half)], "delay": "24h",
                 "quiet_hours": "ignore"}]})
            run = int(time.time())
            bodies = [json.dumps(benchlib.bench_event(f"mem-{run}-{i}", client="bulk")).encode()
                      for i in range(events)]
            started, ended, statuses = benchlib.post_burst(port, "/v1/events", bodies, 8,
                                                           auth_header(DEMO_TOKEN))
            if statuses != {202: events}:
                sys.exit(f"unexpected answers: {statuses}")
            scheduled = sum(float(n) for n in re.findall(
                r'^herald_messages\{[^}]*status="scheduled"\} (\S+)$',
                benchlib.metrics_text(conn), re.M))
            print(f"  ({events} events posted in {ended - started:.1f} s: "
                  f"{scheduled:.0f} messages scheduled, due in 24 h)")
            conn.close()
            row(f"3. with {scheduled:.0f} scheduled messages", settle_and_read(proc.pid, port=port))
            exercise(port)
            row("   ... after 10 /metrics scrapes and 10 deliveries pages",
                settle_and_read(proc.pid, 1, port))
            proc.terminate()
            proc.wait(30)

            proc, port = benchlib.start_herald(args.herald, workdir, config)
            row("4. restarted on that database", settle_and_read(proc.pid, port=port))
            exercise(port)
            row("   ... after 10 /metrics scrapes and 10 deliveries pages",
                settle_and_read(proc.pid, 1, port))
            print(f"  (database: {os.path.getsize(os.path.join(workdir, 'herald.db')) / 2**20:.0f}"
                  f" MiB)")
            proc.terminate()
            proc.wait(30)
            proc = None
            if args.report_incidents:
                report_step(args, workdir, row)
            print(f"load average after: {benchlib.load_average()}")
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(30)


def report_step(args, parent, row):
    import reports  # bench/reports.py
    workdir = os.path.join(parent, "reports")
    os.makedirs(workdir)
    db = os.path.join(workdir, "herald.db")
    subprocess.run([args.herald, "migrate", "--database", db], check=True, capture_output=True)
    messages, _ = reports.fill(db, args.report_incidents, 50)
    proc, _ = benchlib.start_herald(args.herald, workdir, benchlib.write_config(workdir))
    try:
        started = time.time()
        row(f"5. on {args.report_incidents} incidents of 20 days, before the report",
            settle_and_read(proc.pid, 50))
        time.sleep(max(0.0, started + 70 - time.time()))
        row("   ... after the first once-a-minute report", benchlib.proc_status(proc.pid))
        time.sleep(max(0.0, started + 130 - time.time()))
        row("   ... after the second", benchlib.proc_status(proc.pid))
        print(f"  ({messages} messages; database {os.path.getsize(db) / 2**20:.0f} MiB)")
    finally:
        proc.terminate()
        proc.wait(30)


if __name__ == "__main__":
    main()
