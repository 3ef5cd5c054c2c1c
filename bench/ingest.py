#!/usr/bin/python3
"""Ingest throughput with synchronous=FULL: events acknowledged per second at a given
concurrency, with latency percentiles and the group-commit batch size read from /metrics.

Starts its own herald (the binary given) on a temporary database with one client, one
contact and one rule, so every event also plans and stores one message. Nothing is delivered
anywhere (the rule's delay is an hour; the email would go to a closed port).

Two load generators:
  --client wrk     (default when /usr/bin/wrk exists) Debian's wrk, one keep-alive connection
                   per unit of concurrency, for --duration seconds, a Lua script giving every
                   request a unique event id; closed loop: each connection sends its next
                   event as soon as the previous one is acknowledged.
  --client python  N Python threads with http.client, --events in all (the client itself
                   costs about as much CPU as herald: use it to check, not to measure).

    bench/ingest.py build/herald --concurrency 1 --duration 10
    bench/ingest.py build/herald --concurrency 32 --duration 10
    bench/ingest.py build/herald --client python --events 4000 --concurrency 32

Every request must be answered 202: the run fails on any other status, and the count of
events herald reports accepted (herald_events_total) must equal the count acknowledged.

With --alertmanager the same wrk load goes to Debian's Prometheus Alertmanager 0.25 instead
(POST /api/v2/alerts, each alert a label set of its own, held in memory): what acknowledging an
event costs there, next to herald's durable 202.

    bench/ingest.py build/herald --alertmanager --concurrency 1 --duration 10
"""
import argparse
import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import TOKEN, call  # noqa: E402

EVENT_JSON = ('{"event_id":"%s","client":"acme","incident":{"id":"%s","severity":"high"},'
              '"phase":"containment"}')
# The same event as an Alertmanager alert: a label set of its own, so each is a new alert.
ALERT_JSON = ('[{"labels":{"alertname":"IncidentPhase","event_id":"%s","incident":"%s",'
              '"client":"acme","severity":"critical","phase":"containment"}}]')

# wrk: each thread numbers its own requests; the thread number and a run prefix keep event ids
# unique across threads and runs. done() prints one line the script parses.
WRK_SCRIPT = r"""
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  prefix = args[1]
  n = 0
  headers = {["Authorization"] = "Bearer %TOKEN%", ["Content-Type"] = "application/json"}
end
function request()
  n = n + 1
  local id = string.format("%s-%d-%d", prefix, tid, n)
  local body = string.format('%EVENT%', id, "INC-" .. id)
  return wrk.format("POST", "%PATH%", headers, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%d duration_us=%d socket_errors=%d non2xx=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def start(herald, workdir):
    return benchlib.start_herald(herald, workdir, benchlib.write_config(workdir))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_alertmanager(workdir):
    """Debian's Alertmanager 0.25 with each alert its own group, `group_wait: 0s` and one
    webhook receiver (a closed port: its notifications fail and are retried in memory)."""
    config = os.path.join(workdir, "alertmanager.yml")
    with open(config, "w") as f:
        f.write("""route:
  receiver: hook
  group_by: ['...']
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: http://127.0.0.1:9/
""")
    port = free_port()
    log = open(os.path.join(workdir, "alertmanager.log"), "w")
    proc = subprocess.Popen(
        ["prometheus-alertmanager", f"--config.file={config}",
         f"--storage.path={os.path.join(workdir, 'am')}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=log, stderr=log)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/-/ready")
            if c.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("alertmanager did not start")


def run_alertmanager(args):
    """The same load against Alertmanager's POST /api/v2/alerts (kept in memory)."""
    with tempfile.TemporaryDirectory() as workdir:
        proc, port = start_alertmanager(workdir)
        try:
            cpu_before = cpu_seconds(proc.pid)
            n, elapsed, lat = run_wrk(port, workdir, args.concurrency, args.duration,
                                      args.wrk_threads, "/api/v2/alerts", ALERT_JSON)
            cpu = cpu_seconds(proc.pid) - cpu_before
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    load = os.getloadavg()
    print(f"alertmanager (POST /api/v2/alerts, in memory): events: {n}  "
          f"concurrency: {args.concurrency}  elapsed: {elapsed:.2f} s")
    print(f"throughput: {n / elapsed:.0f} alerts/s acknowledged")
    print(f"latency: p50 {lat['p50'] * 1000:.2f} ms  p90 {lat['p90'] * 1000:.2f} ms  "
          f"p99 {lat['p99'] * 1000:.2f} ms  max {lat['max'] * 1000:.2f} ms")
    print(f"alertmanager CPU: {cpu:.2f} s ({cpu / elapsed * 100:.0f}% of one core), "
          f"{cpu / max(n, 1) * 1e6:.0f} us per alert")
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def metrics(conn):
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    out = {}
    for name, pattern in (("commits", r"herald_store_commits_total"),
                          ("writes", r"herald_store_committed_writes_total"),
                          ("write_seconds", r"herald_store_write_seconds_total"),
                          ("commit_seconds", r"herald_store_commit_seconds_total"),
                          ("accepted", r'herald_events_total\{outcome="accepted"\}')):
        m = re.search(rf"^{pattern} ([0-9.e+]+)$", text, re.M)
        out[name] = float(m.group(1)) if m else 0.0
    return out


def cpu_seconds(pid, task=None):
    """User + system CPU time of a process (or one of its threads) so far, from /proc."""
    path = f"/proc/{pid}/task/{task}/stat" if task else f"/proc/{pid}/stat"
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_by_thread(pid):
    """CPU seconds so far by thread name (herald names its writer and HTTP threads)."""
    out = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/comm") as f:
                name = f.read().strip()
            out[name] = out.get(name, 0.0) + cpu_seconds(pid, task)
        except FileNotFoundError:
            pass  # the thread ended meanwhile
    return out


def fsync_probe(directory, frames, count=300):
    """What a durable commit costs this disk without herald: `count` rounds of appending
    `frames` WAL frames (a 24-byte header and a 4 KiB page each, at the WAL's unaligned
    offsets) to a preallocated file and one fdatasync(2), in the database's directory. SQLite's
    WAL commit with synchronous=FULL is exactly this. (The pattern matters on this VM: a bare
    loop rewriting aligned 4 KiB pages measures about 4 ms per fdatasync, frames like these
    0.2 ms.) Returns (commits per second, p50, p99) in seconds."""
    path = os.path.join(directory, "fsync-probe")
    frame = 24 + 4096
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, b"\0" * (32 + frame * frames * count))
        os.fsync(fd)
        header, page = b"h" * 24, b"p" * 4096
        latencies = []
        offset = 32
        t0 = time.perf_counter()
        for _ in range(count):
            t = time.perf_counter()
            for _ in range(frames):
                os.pwrite(fd, header, offset)
                os.pwrite(fd, page, offset + 24)
                offset += frame
            os.fdatasync(fd)
            latencies.append(time.perf_counter() - t)
        elapsed = time.perf_counter() - t0
    finally:
        os.close(fd)
        os.unlink(path)
    latencies.sort()
    return count / elapsed, latencies[count // 2], latencies[int(count * 0.99)]


def run_python(port, events, concurrency):
    """Returns (acknowledged, elapsed seconds, sorted latencies in seconds)."""
    latencies = []
    lock = threading.Lock()
    per_worker = events // concurrency
    failures = []

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
                failures.append(status)
                return
        with lock:
            latencies.extend(mine)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if failures:
        raise SystemExit(f"unexpected status {failures[0]}")
    latencies.sort()
    n = len(latencies)
    return n, elapsed, {"p50": latencies[n // 2], "p90": latencies[int(n * 0.90)],
                        "p99": latencies[int(n * 0.99)], "max": latencies[-1]}


def run_wrk(port, workdir, concurrency, duration, threads, path="/v1/events", event=EVENT_JSON):
    script = os.path.join(workdir, "events.lua")
    with open(script, "w") as f:
        f.write(WRK_SCRIPT.replace("%TOKEN%", TOKEN).replace("%EVENT%", event)
                .replace("%PATH%", path))
    prefix = f"w{os.getpid()}"
    out = subprocess.run(
        ["wrk", "-t", str(min(threads, concurrency)), "-c", str(concurrency), "-d", f"{duration:g}s",
         "--timeout", "30s", "-s", script, f"http://127.0.0.1:{port}", "--", prefix],
        capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"wrk failed: {out.stderr}{out.stdout}")
    out = out.stdout
    m = re.search(r"^WRK (.*)$", out, re.M)
    if not m:
        raise SystemExit(f"cannot read wrk's output:\n{out}")
    r = {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    if r["socket_errors"] or r["non2xx"]:
        raise SystemExit(f"wrk saw {r['socket_errors']} socket errors and {r['non2xx']} "
                         f"non-2xx answers:\n{out}")
    return r["requests"], r["duration_us"] / 1e6, {
        "p50": r["p50_us"] / 1e6, "p90": r["p90_us"] / 1e6, "p99": r["p99_us"] / 1e6,
        "max": r["max_us"] / 1e6}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("herald")
    ap.add_argument("--client", choices=("wrk", "python"),
                    default="wrk" if shutil.which("wrk") else "python")
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--duration", type=float, default=10, help="seconds (wrk)")
    ap.add_argument("--wrk-threads", type=int, default=2, help="wrk's threads (wrk)")
    ap.add_argument("--events", type=int, default=2000, help="events in all (python)")
    ap.add_argument("--fsync-probe", action="store_true",
                    help="first time bare commits (WAL frames + fdatasync) in the database's "
                         "directory, without herald")
    ap.add_argument("--perf", metavar="FILE",
                    help="record herald's profile during the load with `perf record -e cpu-clock "
                         "-g` into FILE (read it with `perf report -i FILE`)")
    ap.add_argument("--callgrind", metavar="FILE",
                    help="run herald under `valgrind --tool=callgrind`, counting instructions "
                         "during the load only, into FILE (read it with `callgrind_annotate`); "
                         "herald is then about 50 times slower: use the python client")
    ap.add_argument("--alertmanager", action="store_true",
                    help="instead of herald, put the same load (wrk) on Prometheus Alertmanager's "
                         "POST /api/v2/alerts, for comparison")
    args = ap.parse_args()
    if args.alertmanager:
        run_alertmanager(args)
        return

    with tempfile.TemporaryDirectory() as workdir:
        if args.fsync_probe:
            # What herald writes per commit (WAL hook): about 16 frames for one event alone,
            # 65 for the batch of about 20 events a commit holds at concurrency 32.
            for frames in (16, 65):
                rate, p50, p99 = fsync_probe(workdir, frames)
                print(f"fsync probe: {frames} WAL frames + fdatasync: {rate:.0f}/s, "
                      f"p50 {p50 * 1000:.2f} ms  p99 {p99 * 1000:.2f} ms")
        herald = args.herald
        if args.callgrind:
            herald = os.path.join(workdir, "herald-callgrind")
            with open(herald, "w") as f:
                f.write(f"#!/bin/sh\nexec valgrind --tool=callgrind --instr-atstart=no "
                        f"--callgrind-out-file={os.path.abspath(args.callgrind)} "
                        f"{os.path.abspath(args.herald)} \"$@\"\n")
            os.chmod(herald, 0o755)
        proc, port = start(herald, workdir)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port)
            call(conn, "PUT", "/v1/clients/acme", {"name": "Acme"})
            call(conn, "PUT", "/v1/clients/acme/contacts/dana",
                 {"name": "Dana", "roles": ["legal"], "email": "dana@acme.example"})
            call(conn, "PUT", "/v1/clients/acme/plan",
                 {"rules": [{"id": "r", "phases": ["containment"], "roles": ["legal"],
                             "channels": ["email"], "delay": "1h"}]})
            before = metrics(conn)
            cpu_before = cpu_seconds(proc.pid)
            threads_before = cpu_by_thread(proc.pid)
            perf = None
            if args.callgrind:
                subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True,
                               capture_output=True)
            if args.perf:
                perf = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-g",
                                         "-o", args.perf, "-p", str(proc.pid)])
            if args.client == "wrk":
                n, elapsed, lat = run_wrk(port, workdir, args.concurrency, args.duration,
                                          args.wrk_threads)
            else:
                n, elapsed, lat = run_python(port, args.events, args.concurrency)
            cpu = cpu_seconds(proc.pid) - cpu_before
            threads_after = cpu_by_thread(proc.pid)
            if perf:
                perf.send_signal(2)  # SIGINT: perf writes its file and exits
                perf.wait(timeout=60)
            if args.callgrind:
                subprocess.run(["callgrind_control", "-i", "off", str(proc.pid)], check=True,
                               capture_output=True)
            after = metrics(conn)
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    accepted = after["accepted"] - before["accepted"]
    commits = after["commits"] - before["commits"]
    writes = after["writes"] - before["writes"]
    load = os.getloadavg()
    print(f"client: {args.client}  events: {n}  concurrency: {args.concurrency}  "
          f"elapsed: {elapsed:.2f} s")
    print(f"throughput: {n / elapsed:.0f} events/s acknowledged (synchronous=FULL)")
    print(f"latency: p50 {lat['p50'] * 1000:.2f} ms  p90 {lat['p90'] * 1000:.2f} ms  "
          f"p99 {lat['p99'] * 1000:.2f} ms  max {lat['max'] * 1000:.2f} ms")
    print(f"group commit: {writes:.0f} writes in {commits:.0f} commits "
          f"({writes / max(commits, 1):.1f} writes per fsync'd commit)")
    write_s = after["write_seconds"] - before["write_seconds"]
    commit_s = after["commit_seconds"] - before["commit_seconds"]
    print(f"writer: {write_s / elapsed * 100:.0f}% of the time running writes "
          f"({write_s / max(writes, 1) * 1e6:.0f} us per write), "
          f"{commit_s / elapsed * 100:.0f}% committing ({commit_s / max(commits, 1) * 1000:.2f} ms "
          f"per commit)")
    print(f"herald CPU: {cpu:.2f} s ({cpu / elapsed * 100:.0f}% of one core), "
          f"{cpu / max(n, 1) * 1e6:.0f} us per event")
    by_thread = sorted(((threads_after[k] - threads_before.get(k, 0.0), k) for k in threads_after),
                       reverse=True)
    print("herald CPU by thread: " + ", ".join(f"{name} {secs / elapsed * 100:.0f}%"
                                              for secs, name in by_thread if secs > 0))
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    # Requests still in flight when wrk stops may be accepted without being counted by wrk.
    if accepted < n or accepted > n + args.concurrency:
        raise SystemExit(f"herald accepted {accepted:.0f} events, the client counted {n}")


if __name__ == "__main__":
    main()
