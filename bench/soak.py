#!/usr/bin/python3
"""Soak: steady events in, deliveries out to real loopback receivers, some of them failing;
herald's resident memory (VmRSS) and open file descriptors sampled over time.

The receivers are the tests' own (tests/e2e/harness.py): tools/mailcatcher.py (a real SMTP
server), tools/webhook_receiver.py (a signed webhook that always answers 200), and
tests/e2e/fault_receiver.py with two endpoints: one answering 429/5xx to 30 % of attempts,
one resetting 10 % of connections (seeded), so messages are retried and breakers trip now and
then. Client acme: two people (email) and those three webhook endpoints; every incident gets
a containment event, then an eradication event (which cancels what is still unsent of the
first and plans its own messages). Each event is posted on a new connection.

Prints a line every INTERVAL: elapsed time, RSS, peak RSS, herald's heap in use and kept free
by malloc and SQLite's share of it (MiB, from /metrics), open fds and of them sockets, events
posted, messages delivered, attempts that failed (and were retried), messages not yet finished,
messages cancelled (superseded by the next phase before they were sent), the database's size.
At the end, once the load stops and the queue drains, it checks what tests/e2e/test_soak.py
checks: no event refused, every message delivered or cancelled, the fds other than sockets and
the RSS of the last third of the run not above the first third's (within a slack, see `flat`),
the sockets within SOCKET_BOUND.

    bench/soak.py build/herald --minutes 60
    bench/soak.py build/herald --minutes 10 --rate 20 --interval 30
"""
import argparse
import datetime
import json
import os
import sys
import tempfile
import threading
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH_DIR)
sys.path.insert(0, os.path.join(os.path.dirname(BENCH_DIR), "tests", "e2e"))
import benchlib  # noqa: E402
import harness  # noqa: E402

FAULT_RECEIVER = os.path.join(harness.SOURCE_DIR, "tests", "e2e", "fault_receiver.py")
# Retries soon enough that a failing attempt is retried within the run.
# Sixteen attempts in flight at most: that bounds the outbound connections (below).
CONCURRENCY = 16
DELIVERY = {"max_backoff": "1s", "attempt_timeout": "2s", "breaker_cool_down": "1s",
            "breaker_max_cool_down": "2s", "concurrency": CONCURRENCY}
# Descriptors other than sockets (the database, its WAL and shared memory for the writer and
# the reader pool, the log, eventfds, pipes) hardly move; a leak of one per event, attempt or
# reload goes far beyond this.
FD_SLACK = 6
# Sockets move with the load: the attempts in flight (CONCURRENCY), the idle connections the
# transport keeps for reuse (as many, at least 16), the listener and the load's own
# connections. Their number is bounded by the settings, not by how long herald runs: a socket
# leaked per attempt or connection passes this bound within minutes.
SOCKET_BOUND = 2 * max(CONCURRENCY, 16) + 8
# Memory: the heap in use (malloc's own count of live bytes, herald_heap_in_use_bytes) is
# what a leak makes grow: SQLite's page caches (2 MB per connection at most) fill up as the
# database grows, within this slack; a leak of a few hundred bytes per event or attempt
# exceeds it within minutes. The resident size also holds what malloc keeps freed for
# reuse, which creeps up as its arenas fragment (10-15 MiB after an hour here, see
# bench/README.md): it is held to a ceiling, not to flatness.
HEAP_SLACK_KIB = 2048
HEAP_SLACK_RATIO = 0.10
RSS_CEILING_KIB = 64 * 1024


def flat(samples, slack_abs, slack_ratio=0.0):
    """Whether a series stays flat: the maximum of its last third is at most the maximum of
    its first third plus slack_abs and slack_ratio of it. Returns (ok, first, last)."""
    third = len(samples) // 3
    if third < 1:
        raise ValueError("too few samples to compare thirds")
    first, last = max(samples[:third]), max(samples[-third:])
    return last <= first * (1 + slack_ratio) + slack_abs, first, last


def sanitized(pid):
    """Whether the process runs with AddressSanitizer (RSS is then its quarantine's, not
    herald's)."""
    with open(f"/proc/{pid}/maps") as f:
        return any("libasan" in line or "libtsan" in line for line in f)


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def start_fault_receiver(workdir, name="faults", seed=7):
    port_file = os.path.join(workdir, name + ".port")
    child = harness.Child(name, [harness.PYTHON, FAULT_RECEIVER, "--port-file", port_file,
                                 "--out", os.path.join(workdir, name + ".jsonl"),
                                 "--seed", str(seed)], os.path.join(workdir, name + ".log"))
    return child, harness.wait_port_file(child, port_file)


def setup_acme(h, hooks_base, faults_base):
    h.ok("PUT", "/v1/clients/acme", "admin", {"name": "Acme Corp", "timezone": "Europe/Berlin"})
    h.ok("PUT", "/v1/clients/acme/contacts/dana", "admin",
         {"name": "Dana Lee", "roles": ["executive"], "email": "dana@acme.example",
          "timezone": "America/New_York", "channels": ["email"]})
    h.ok("PUT", "/v1/clients/acme/contacts/lee", "admin",
         {"name": "Lee Park", "roles": ["legal"], "email": "lee@acme.example",
          "timezone": "Europe/Berlin", "channels": ["email"]})
    for name, url in (("siem", f"{hooks_base}/hooks/siem"),
                      ("flaky", f"{faults_base}/flaky/30/soak"),
                      ("resets", f"{faults_base}/reset/10/soak")):
        h.ok("PUT", f"/v1/clients/acme/endpoints/{name}", "admin",
             {"type": "webhook", "url": url, "secret": harness.whsec()})
    h.ok("PUT", "/v1/clients/acme/plan", "admin", {"rules": [
        {"id": "people", "phases": ["containment", "eradication"], "min_severity": "high",
         "roles": ["executive", "legal"], "channels": ["email"], "delay": "0s",
         "quiet_hours": "ignore"},
        {"id": "rooms", "phases": ["containment", "eradication"], "min_severity": "low",
         "endpoints": ["siem", "flaky", "resets"], "delay": "0s"}]})


class Load(threading.Thread):
    """Posts `rate` events per second, paced, each on a new connection: event 2k puts
    incident k into containment, event 2k+1 moves it on to eradication."""

    def __init__(self, herald, rate):
        super().__init__(daemon=True)
        self.herald = herald
        self.rate = rate
        self.run_id = f"{int(time.time())}"
        self.stopping = threading.Event()
        self.posted = 0
        self.refused = []

    def run(self):
        started = time.monotonic()
        i = 0
        while not self.stopping.is_set():
            wait = started + i / self.rate - time.monotonic()
            if wait > 0 and self.stopping.wait(wait):
                break
            phase = "containment" if i % 2 == 0 else "eradication"
            body = harness.event(f"soak-{self.run_id}-{i}", incident=f"INC-{self.run_id}-{i // 2}",
                                 phase=phase, occurred_at=now_rfc3339())
            try:
                r = self.herald.request("POST", "/v1/events", "ingest", body)
                status = r.status
            except OSError as e:
                status = str(e)
            if status == 202:
                self.posted += 1
            else:
                self.refused.append((i, status))
            i += 1

    def stop(self):
        self.stopping.set()
        self.join(60)


class Sampler(threading.Thread):
    """Reads VmRSS, VmHWM and the fd counts of `pid` every `interval` seconds, and the heap in
    use (KiB, from `heap()`) every `heap_every` seconds."""

    def __init__(self, pid, heap=None, interval=1.0, heap_every=3.0):
        super().__init__(daemon=True)
        self.pid = pid
        self.heap = heap
        self.interval = interval
        self.heap_every = heap_every
        self.samples = []  # (seconds since start, {VmRSS, VmHWM, fds, sockets, files})
        self.heap_samples = []  # KiB
        self.stopping = threading.Event()
        self.started = time.monotonic()

    def run(self):
        next_heap = 0.0
        while True:
            now = time.monotonic() - self.started
            self.samples.append((now, benchlib.proc_status(self.pid)))
            if self.heap is not None and now >= next_heap:
                self.heap_samples.append(self.heap())
                next_heap = now + self.heap_every
            if self.stopping.wait(self.interval):
                return

    def stop(self):
        self.stopping.set()
        self.join(10)

    def series(self, key):
        if key == "heap":
            return list(self.heap_samples)
        return [s[key] for _, s in self.samples]


def message_counts(h):
    """{status: count} over every channel, and failed attempts, from /metrics."""
    text = h.request("GET", "/metrics").body
    counts = {}
    failed_attempts = 0
    for line in text.splitlines():
        if line.startswith("herald_messages{"):
            status = line.split('status="')[1].split('"')[0]
            counts[status] = counts.get(status, 0) + int(float(line.rsplit(" ", 1)[1]))
        elif line.startswith("herald_attempts_total{") and 'outcome="delivered"' not in line:
            failed_attempts += int(float(line.rsplit(" ", 1)[1]))
    return counts, failed_attempts


def memory_gauges(h):
    """herald_heap_in_use_bytes, herald_heap_free_bytes, herald_sqlite_memory_bytes."""
    return benchlib.memory_gauges(h.request("GET", "/metrics").body)


def heap_kib(h):
    return int(memory_gauges(h)["herald_heap_in_use_bytes"] / 1024)


UNFINISHED = ("scheduled", "sending", "retrying")


def drained(h):
    counts, _ = message_counts(h)
    return counts if not any(counts.get(s) for s in UNFINISHED) else None


def check(sampler, load, counts, rss_meaningful):
    """What must hold after a soak; returns a list of problems (empty: passed)."""
    problems = []
    if load.refused:
        problems.append(f"{len(load.refused)} events refused, first: {load.refused[:3]}")
    if set(counts) - {"delivered", "cancelled"}:
        problems.append(f"messages neither delivered nor cancelled: {counts}")
    ok, first, last = flat(sampler.series("files"), FD_SLACK)
    if not ok:
        problems.append(f"open fds other than sockets grew: {first} at most in the first "
                        f"third, {last} in the last (slack {FD_SLACK})")
    if max(sampler.series("sockets")) > SOCKET_BOUND:
        problems.append(f"open sockets reached {max(sampler.series('sockets'))}, beyond the "
                        f"{SOCKET_BOUND} the settings allow")
    if rss_meaningful:
        ok, first, last = flat(sampler.series("heap"), HEAP_SLACK_KIB, HEAP_SLACK_RATIO)
        if not ok:
            problems.append(f"heap in use grew: {first} KiB at most in the first third, {last} "
                            f"KiB in the last (slack {HEAP_SLACK_KIB} KiB + "
                            f"{HEAP_SLACK_RATIO:.0%})")
        peak = max(sampler.series("VmRSS"))
        if peak > RSS_CEILING_KIB:
            problems.append(f"RSS reached {peak} KiB, above the {RSS_CEILING_KIB} KiB ceiling")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("herald")
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--rate", type=float, default=20, help="events per second (default 20)")
    ap.add_argument("--interval", type=float, default=60, help="seconds between table lines")
    ap.add_argument("--samples", metavar="FILE",
                    help="write every 1 s sample (seconds, VmRSS, VmHWM, fds) here as JSON")
    args = ap.parse_args()
    harness.HERALD_BIN = os.path.abspath(args.herald)

    with tempfile.TemporaryDirectory() as workdir:
        children = []
        herald = None
        try:
            mail = harness.MailCatcher(workdir)
            children.append(mail.child)
            hooks = harness.WebhookReceiver(workdir)
            children.append(hooks.child)
            faults, faults_port = start_fault_receiver(workdir)
            children.append(faults)
            config = harness.write_config(workdir, mail.port, hooks.port, delivery=DELIVERY)
            herald = harness.Herald(config, os.path.join(workdir, "herald.log")).start()
            setup_acme(herald, hooks.base, f"http://127.0.0.1:{faults_port}")
            meaningful = not sanitized(herald.proc.pid)

            print(f"herald {args.herald}: {args.rate:g} events/s for {args.minutes:g} min, "
                  f"each event 5 messages (2 emails, 3 webhooks: 1 healthy, 1 answering 429/5xx "
                  f"to 30 %, 1 resetting 10 %); load average {benchlib.load_average()}")
            print(f"{'time':>8} {'RSS MiB':>8} {'peak':>7} {'heap':>6} {'free':>6} {'sqlite':>6} "
                  f"{'fds':>4} {'socks':>5} {'events':>8} {'delivered':>10} {'retried':>8} "
                  f"{'unfinished':>10} {'cancelled':>9} {'db MiB':>7}", flush=True)
            sampler = Sampler(herald.proc.pid, heap=lambda: heap_kib(herald))
            load = Load(herald, args.rate)
            sampler.start()
            load.start()
            end = time.monotonic() + args.minutes * 60

            def db_mib():
                return sum(os.path.getsize(os.path.join(workdir, n)) for n in os.listdir(workdir)
                           if n.startswith("herald.db")) / 2**20

            def line(label):
                st = benchlib.proc_status(herald.proc.pid)
                counts, failed = message_counts(herald)
                mem = memory_gauges(herald)
                print(f"{label:>8} {st['VmRSS'] / 1024:>8.1f} {st['VmHWM'] / 1024:>7.1f} "
                      f"{mem['herald_heap_in_use_bytes'] / 2**20:>6.1f} "
                      f"{mem['herald_heap_free_bytes'] / 2**20:>6.1f} "
                      f"{mem['herald_sqlite_memory_bytes'] / 2**20:>6.1f} "
                      f"{st['fds']:>4} {st['sockets']:>5} {load.posted:>8} "
                      f"{counts.get('delivered', 0):>10} "
                      f"{failed:>8} {sum(counts.get(s, 0) for s in UNFINISHED):>10} "
                      f"{counts.get('cancelled', 0):>9} {db_mib():>7.0f}", flush=True)

            next_line = time.monotonic() + args.interval
            while time.monotonic() < end:
                time.sleep(max(0.0, min(next_line, end) - time.monotonic()))
                if time.monotonic() >= next_line - 0.01:
                    elapsed = int(time.monotonic() - sampler.started)
                    line(f"{elapsed // 60}:{elapsed % 60:02d}")
                    next_line += args.interval
            load.stop()
            sampler.stop()
            counts = harness.wait_for(lambda: drained(herald), 120, "the queue to drain")
            line("drained")
            problems = check(sampler, load, counts, meaningful)
            for key, label in (("files", "fds other than sockets"), ("heap", "heap in use KiB"),
                               ("VmRSS", "RSS KiB")):
                _, first, last = flat(sampler.series(key), 0)
                print(f"{label}: first third at most {first}, last third at most {last}")
            print(f"sockets: at most {max(sampler.series('sockets'))} (bound {SOCKET_BOUND})")
            if not meaningful:
                print("sanitizer build: RSS not checked")
            print("PASSED" if not problems else "FAILED:\n  " + "\n  ".join(problems))
            print(f"load average after: {benchlib.load_average()}")
            if args.samples:
                with open(args.samples, "w") as f:
                    json.dump(sampler.samples, f)
        finally:
            if herald is not None and herald.running:
                herald.stop()
            for c in children:
                c.stop()
        return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
