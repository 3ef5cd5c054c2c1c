#!/usr/bin/python3
"""How long the effectiveness figures and an incident report take on a filled database.

Fills a fresh, migrated database directly with INCIDENTS incidents (three phase changes each,
five messages per phase change, a third of the people's messages acknowledged), starts
`herald serve` on it, and times GET /v1/reports/effectiveness (every client, and one client)
and GET /v1/incidents/{incident}/report in JSON and HTML. Usage:

    bench/reports.py build/herald --incidents 10000
"""

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
from harness import Herald, write_config  # noqa: E402

PHASES = ["identification", "containment", "eradication"]
PEOPLE = [("dana", "email"), ("dana", "sms"), ("lee", "email")]
ROOMS = [("soc-slack", "chat"), ("siem", "webhook")]


def fill(db_path, incidents, clients):
    rnd = random.Random(7)
    db = sqlite3.connect(db_path)
    now = int(time.time() * 1000)
    start = now - 20 * 86_400_000
    for c in range(clients):
        db.execute("INSERT INTO clients VALUES (?, ?, 'UTC', 'en', ?, ?, NULL)",
                   (f"client{c}", f"Client {c}", start, start))
    messages = acks = 0
    for i in range(incidents):
        client = f"client{i % clients}"
        inc = f"INC-{i}"
        t = start + rnd.randrange(19 * 86_400_000)
        db.execute("INSERT INTO incidents VALUES (?, ?, 'Bench', 'high', 'eradication', "
                   "'containment', 0, ?, ?, ?)", (client, inc, t, t, t))
        previous = None
        for p, phase in enumerate(PHASES):
            at = t + p * 3_600_000
            ev = f"evt-{i}-{p}"
            db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, 'high', 'Bench', ?, '', '{}', 0, "
                       "?, 'api', 'bench', 1, 5)", (client, ev, inc, phase, previous, at, at))
            previous = phase
            for n, (who, channel) in enumerate(PEOPLE + ROOMS):
                mid = f"msg_{i}_{p}_{n}"
                person = n < len(PEOPLE)
                failed = rnd.random() < 0.02
                delivered = None if failed else at + rnd.randrange(200, 5_000)
                db.execute(
                    "INSERT INTO messages (id, client_id, event_id, incident_id, phase, rule_id, "
                    "contact_id, endpoint_id, role, channel, status, attempts, update_number, "
                    "created_at, send_at, delivered_at, kind) VALUES (?, ?, ?, ?, ?, 'r', ?, ?, "
                    "'', ?, ?, ?, 1, ?, ?, ?, 'notify')",
                    (mid, client, ev, inc, phase, who if person else "", "" if person else who,
                     channel, "failed" if failed else "delivered", 3 if failed else 1, at, at,
                     delivered))
                messages += 1
                if person and delivered and rnd.random() < 0.33:
                    db.execute("INSERT INTO acks VALUES (?, ?, ?, ?, 'r', ?, ?, '127.0.0.1')",
                               (mid, client, inc, phase, who, delivered + rnd.randrange(60_000,
                                                                                        3_600_000)))
                    acks += 1
    db.commit()
    db.close()
    return messages, acks


def timed(h, path, runs):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        r = h.request("GET", path, "audit", timeout=600)
        times.append((time.perf_counter() - started) * 1000)
        if r.status != 200:
            raise SystemExit(f"{path} -> {r.status} {r.body!r}")
    return statistics.median(times), max(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("herald")
    ap.add_argument("--incidents", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    os.environ["HERALD_BIN"] = os.path.abspath(args.herald)
    import harness
    harness.HERALD_BIN = os.environ["HERALD_BIN"]
    work = tempfile.mkdtemp(prefix="herald-bench-reports-")
    try:
        db_path = os.path.join(work, "herald.db")
        subprocess.run([args.herald, "migrate", "--database", db_path], check=True,
                       capture_output=True)
        started = time.perf_counter()
        messages, acks = fill(db_path, args.incidents, args.clients)
        print(f"filled: {args.incidents} incidents, {args.incidents * 3} phase changes, "
              f"{messages} messages, {acks} acks in {time.perf_counter() - started:.1f} s")
        config = write_config(work, 1, 1, database=db_path)
        h = Herald(config, os.path.join(work, "herald.log")).start()
        try:
            for label, path in [
                ("effectiveness, every client", "/v1/reports/effectiveness"),
                ("effectiveness, one client", "/v1/reports/effectiveness?client=client0"),
                ("effectiveness, html", "/v1/reports/effectiveness?format=html"),
                ("incident report, json", "/v1/incidents/INC-0/report?client=client0"),
                ("incident report, html",
                 "/v1/incidents/INC-0/report?client=client0&format=html"),
            ]:
                median, worst = timed(h, path, args.runs)
                print(f"{label:32} median {median:8.1f} ms   max {worst:8.1f} ms")
        finally:
            h.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
