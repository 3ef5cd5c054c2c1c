#!/usr/bin/python3
"""Ingest with wrk: events acknowledged per second with synchronous=FULL (herald's only
setting: daemon/store/sqlite.cpp), at given concurrencies, with wrk's latency percentiles.

Starts its own herald (the binary given) on a temporary database with one client, one contact
and one rule with a one-hour delay, so every event also plans and stores one message (nothing
falls due during the run). For each concurrency C it runs

    wrk -t min(C, 2) -c C -d DURATION --latency -s bench/ingest_wrk.lua URL -- RUN TOKEN

(bench/ingest_wrk.lua makes every event id unique), then checks in herald's /metrics that
every answered request was an accepted new event, and reads the group-commit batch size.
wrk is closed-loop: each connection sends its next request when the previous one is answered.

    bench/ingest_wrk.py build/herald                       # concurrency 1 and 32, 20 s each
    bench/ingest_wrk.py build/herald --concurrency 1 32 64 --duration 30
"""
import argparse
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import TOKEN, metric, metrics_text, must  # noqa: E402

LUA = os.path.join(benchlib.BENCH_DIR, "ingest_wrk.lua")


def run_wrk(port, concurrency, duration, run_id):
    threads = min(concurrency, 2)
    argv = ["wrk", "-t", str(threads), "-c", str(concurrency), "-d", f"{duration}s",
            "--timeout", "10s", "--latency", "-s", LUA, f"http://127.0.0.1:{port}", "--",
            run_id, TOKEN]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    result = {}
    for m in re.finditer(r"^RESULT (\S+) (\S+)(.*)$", out, re.M):
        if m.group(1) == "requests":
            fields = (m.group(1) + " " + m.group(2) + m.group(3)).split()
            result.update({fields[i]: float(fields[i + 1]) for i in range(0, len(fields), 2)})
        else:
            result[m.group(1)] = float(m.group(2))
    return argv, out, result


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("herald")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--duration", type=int, default=20, help="seconds per wrk run")
    ap.add_argument("--show-wrk", action="store_true", help="print wrk's own report too")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian package wrk; `make deps` installs it)")

    with tempfile.TemporaryDirectory() as workdir:
        proc, port = benchlib.start_herald(args.herald, workdir, benchlib.write_config(workdir))
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port)
            must(conn, "PUT", "/v1/clients/acme", {"name": "Acme"})
            must(conn, "PUT", "/v1/clients/acme/contacts/dana",
                 {"name": "Dana", "roles": ["legal"], "email": "dana@acme.example"})
            must(conn, "PUT", "/v1/clients/acme/plan",
                 {"rules": [{"id": "r", "phases": ["containment"], "roles": ["legal"],
                             "channels": ["email"], "delay": "1h"}]})
            print(f"herald {args.herald}, synchronous=FULL, {args.duration} s per run, "
                  f"load average {benchlib.load_average()}, fdatasync p50 "
                  f"{benchlib.fsync_ms(workdir):.2f} ms")
            print(f"{'conc.':>5} {'events/s':>9} {'p50':>9} {'p90':>9} {'p99':>9} {'max':>9}"
                  f" {'per commit':>10}  {'checked':>8}")
            for c in args.concurrency:
                before = metrics_text(conn)
                argv, out, r = run_wrk(port, c, args.duration, f"r{int(time.time())}-c{c}")
                time.sleep(0.5)  # requests wrk abandoned at its deadline finish committing
                after = metrics_text(conn)

                def delta(name):
                    return metric(after, name) - metric(before, name)

                accepted = delta('herald_events_total{outcome="accepted"}')
                commits = delta("herald_store_commits_total")
                writes = delta("herald_store_committed_writes_total")
                answered = r["requests"]
                ok = r["non2xx"] == 0 and r["socket_errors"] == 0 and accepted >= answered
                ms = lambda us: f"{us / 1000:.2f} ms"  # noqa: E731
                print(f"{c:>5} {answered / (r['duration_us'] / 1e6):>9.0f} {ms(r['p50']):>9}"
                      f" {ms(r['p90']):>9} {ms(r['p99']):>9} {ms(r['max']):>9}"
                      f" {writes / max(commits, 1):>10.1f}  {'ok' if ok else 'FAILED':>8}")
                if args.show_wrk or not ok:
                    print("$ " + " ".join(argv))
                    print(out)
                if not ok:
                    sys.exit(f"{answered:.0f} answered, {accepted:.0f} accepted by herald, "
                             f"{r['non2xx']:.0f} non-2xx, {r['socket_errors']:.0f} socket errors")
            print(f"load average after: {benchlib.load_average()}")
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
