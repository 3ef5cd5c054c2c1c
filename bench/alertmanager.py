#!/usr/bin/python3
"""Herald and Prometheus Alertmanager side by side on the same work: one event (alert) in,
one webhook out, to the same loopback receiver, in the same run.

Alertmanager: Debian's prometheus-alertmanager 0.25, every alert its own group
(group_by: ['...']), group_wait: 0s, one webhook receiver, clustering off, alerts posted one
per request to POST /api/v2/alerts. Herald (the binary given): its default delivery settings,
one client, one signed webhook endpoint, one rule sending every event to it at once; events
posted one per request to POST /v1/events. Herald commits every event, message and attempt to
SQLite with synchronous=FULL (fsync) before it answers or moves on; Alertmanager keeps alerts
in memory (its notification log is snapshotted to disk every 15 minutes).

(a) burst: N events/alerts posted by wrk (bench/burst_wrk.lua, 2 threads, WORKERS keep-alive
    connections) as fast as they are answered; the time from wrk's start to the N-th webhook
    arriving, for ROUNDS rounds, alternating which daemon goes first; the median round counts.
    The same burst against the receiver alone shows what wrk and the receiver manage.
(b) single-event latency: one event posted, the time until its webhook arrives, SAMPLES times
    each, alternating herald and Alertmanager sample by sample so that both see the same
    machine; p50/p99.

    bench/alertmanager.py build/herald
    bench/alertmanager.py build/herald --events 10000 --rounds 3 --samples 300
    bench/alertmanager.py build/herald --herald-delivery destination_concurrency=16
"""
import argparse
import datetime
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import Arrivals, RawClient, auth_header, percentile  # noqa: E402

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
BURST_LUA = os.path.join(benchlib.BENCH_DIR, "burst_wrk.lua")
AM_CONFIG = """\
route:
  receiver: bench
  group_by: ['...']
  group_wait: 0s
  group_interval: 5m
  repeat_interval: 4h
receivers:
  - name: bench
    webhook_configs:
      - url: "{url}"
        send_resolved: false
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Alertmanager:
    kind = "alertmanager"
    path = "/api/v2/alerts"
    headers = b""
    name = "alertmanager"

    def __init__(self, workdir, webhook_url):
        config = os.path.join(workdir, "alertmanager.yml")
        with open(config, "w") as f:
            f.write(AM_CONFIG.format(url=webhook_url))
        self.port = free_port()
        self.log = open(os.path.join(workdir, "alertmanager.log"), "w")
        self.proc = subprocess.Popen(
            [ALERTMANAGER, f"--config.file={config}",
             f"--storage.path={os.path.join(workdir, 'am-data')}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
            stdout=self.log, stderr=self.log)
        deadline = time.time() + 30
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while True:
            try:
                with opener.open(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline or self.proc.poll() is not None:
                sys.exit("alertmanager did not start: see its log")
            time.sleep(0.1)

    @staticmethod
    def body(key):
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return json.dumps([{"labels": {"alertname": "Bench", "bench_key": key,
                                       "severity": "critical"},
                            "annotations": {"summary": "bench"}, "startsAt": now}]).encode()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


class Herald:
    kind = "herald"
    path = "/v1/events"
    headers = auth_header()
    name = "herald"

    def __init__(self, binary, workdir, webhook_url, delivery):
        os.makedirs(workdir, exist_ok=True)
        config = benchlib.write_config(workdir, delivery=delivery)
        self.proc, self.port = benchlib.start_herald(binary, workdir, config)
        benchlib.setup_webhook_client(http.client.HTTPConnection("127.0.0.1", self.port),
                                      webhook_url)

    @staticmethod
    def body(key):
        return json.dumps(benchlib.bench_event(key)).encode()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)

    def deferred(self):
        """herald_deferred_total by reason: claimed messages put back unsent."""
        text = benchlib.metrics_text(http.client.HTTPConnection("127.0.0.1", self.port))
        return {m.group(1): float(m.group(2)) for m in re.finditer(
            r'^herald_deferred_total\{reason="(\w+)"\} (\S+)$', text, re.M)}


def burst(daemon, arrivals, n, workers, tag, timeout):
    """wrk posts n events (2 threads, `workers` connections; bench/burst_wrk.lua), each its own
    key; returns the time from wrk's start to the last of their webhooks arriving, and the
    CPU the daemon used meanwhile."""
    threads = 2
    quota = -(-n // threads)
    prefix = f"{daemon.kind}-burst{tag}"
    keys = [f"{prefix}-{t}-{i}" for t in range(1, threads + 1) for i in range(1, quota + 1)]
    argv = ["wrk", "-t", str(threads), "-c", str(workers), "-d", f"{int(timeout) + 60}s",
            "--timeout", "10s", "-s", BURST_LUA, f"http://127.0.0.1:{daemon.port}", "--",
            daemon.kind, prefix, str(quota), benchlib.TOKEN]
    deferred0 = daemon.deferred() if hasattr(daemon, "deferred") else {}
    cpu0 = benchlib.cpu_seconds(daemon.proc.pid)
    started = time.time()
    wrk = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    got = arrivals.wait_count(keys, timeout)
    cpu = benchlib.cpu_seconds(daemon.proc.pid) - cpu0
    wrk.send_signal(signal.SIGINT)
    out = wrk.communicate(timeout=30)[0]
    if got < len(keys):
        sys.exit(f"{daemon.name}: only {got} of {len(keys)} webhooks arrived within "
                 f"{timeout:.0f} s\n{out}")
    if "BAD " in out or "non2xx 0 socket_errors 0" not in out:
        sys.exit(f"{daemon.name} refused requests:\n{out}")
    last = max(arrivals.times[k] for k in keys)
    deferred = {}
    if hasattr(daemon, "deferred"):
        deferred = {k: v - deferred0.get(k, 0) for k, v in daemon.deferred().items()}
    return {"elapsed": last - started, "cpu": cpu, "n": len(keys), "deferred": deferred}


def one(daemon, client, arrivals, key, timeout=30):
    body = daemon.body(key)
    t0 = time.time()
    status, _ = client.post(daemon.path, body, daemon.headers)
    answered = time.time()
    if status >= 300:
        sys.exit(f"{daemon.name} answered {status}")
    at = arrivals.wait(key, timeout)
    if at is None:
        sys.exit(f"{daemon.name}: webhook {key} did not arrive within {timeout} s")
    return (at - t0) * 1000, (answered - t0) * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("herald")
    ap.add_argument("--events", type=int, default=5000, help="per burst (default 5000)")
    ap.add_argument("--workers", type=int, default=32, help="posting connections (default 32)")
    ap.add_argument("--rounds", type=int, default=3, help="bursts per daemon (default 3)")
    ap.add_argument("--samples", type=int, default=200,
                    help="single-event latency samples per daemon (default 200)")
    ap.add_argument("--gap", type=float, default=0.02,
                    help="pause between latency samples, seconds (default 0.02)")
    ap.add_argument("--herald-delivery", action="append", default=[], metavar="KEY=VALUE",
                    help="a [delivery] setting for herald (integer values), e.g. "
                         "destination_concurrency=16")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--perf", metavar="FILE",
                    help="record herald's bursts with `perf record --call-graph dwarf` into FILE (see "
                         "bench/README.md for reading it)")
    args = ap.parse_args()
    delivery = benchlib.delivery_settings(args.herald_delivery)

    with tempfile.TemporaryDirectory() as workdir:
        arrivals = Arrivals()
        daemons = []
        try:
            # What the posting client and the receiver manage on their own, for scale.
            class Receiver:
                kind, name, port = "herald", "receiver", arrivals.port
                proc = arrivals.proc
            b = burst(Receiver, arrivals, args.events, args.workers, "ceiling", 60)
            ceiling = b["n"] / b["elapsed"]

            am = Alertmanager(workdir, arrivals.url + "/alertmanager")
            daemons.append(am)
            herald = Herald(args.herald, os.path.join(workdir, "herald"),
                            arrivals.url + "/herald", delivery)
            daemons.append(herald)
            print(f"herald {args.herald} (delivery settings: {delivery or 'defaults'}); "
                  f"{subprocess.run([ALERTMANAGER, '--version'], capture_output=True, text=True).stdout.splitlines()[0]}")
            print(f"load average before: {benchlib.load_average()}; fdatasync p50 "
                  f"{benchlib.fsync_ms(workdir):.2f} ms; "
                  f"wrk + receiver alone: {ceiling:.0f} requests/s with {args.workers} "
                  f"connections")

            # (b) single-event latency, alternating.
            clients = {d.name: RawClient(d.port) for d in daemons}
            for d in daemons:  # warm up: connections, statements, the receiver's sockets
                for i in range(5):
                    one(d, clients[d.name], arrivals, f"{d.name}-warm-{i}")
            lat = {d.name: [] for d in daemons}
            ack = {d.name: [] for d in daemons}
            for i in range(args.samples):
                for d in (daemons if i % 2 == 0 else daemons[::-1]):
                    total, answered = one(d, clients[d.name], arrivals, f"{d.name}-one-{i}")
                    lat[d.name].append(total)
                    ack[d.name].append(answered)
                    time.sleep(args.gap)
            for c in clients.values():
                c.close()

            # (a) bursts, alternating which goes first.
            bursts = {d.name: [] for d in daemons}
            for r in range(args.rounds):
                for d in (daemons if r % 2 == 0 else daemons[::-1]):
                    perf = None
                    if args.perf and d is herald:
                        perf = subprocess.Popen(
                            ["perf", "record", "--call-graph", "dwarf,32768", "-F", "499", "-q", "-p",
                             str(d.proc.pid), "-o",
                             f"{args.perf}.{r}" if args.rounds > 1 else args.perf],
                            stdout=subprocess.DEVNULL)
                        time.sleep(0.5)
                    bursts[d.name].append(burst(d, arrivals, args.events, args.workers, r,
                                                args.timeout))
                    if perf is not None:
                        perf.send_signal(signal.SIGINT)
                        perf.wait(60)
                    time.sleep(1)
            load_after = benchlib.load_average()
        finally:
            for d in daemons:
                d.stop()
            arrivals.stop()

    print()
    print(f"(a) burst: {args.events} events posted by wrk from {args.workers} connections, one "
          f"per request; time until the last webhook arrived (median of {args.rounds} rounds)")
    thr = {}
    for name, rounds in bursts.items():
        rounds.sort(key=lambda b: b["elapsed"])
        med = rounds[len(rounds) // 2]
        thr[name] = med["n"] / med["elapsed"]
        print(f"  {name:<13} {thr[name]:>7.0f} webhooks/s  (all {med['n']} in "
              f"{med['elapsed']:.2f} s; rounds: "
              + ", ".join(f"{b['elapsed']:.2f}" for b in rounds) + " s; daemon CPU "
              f"{1e6 * med['cpu'] / med['n']:.0f} us/event)")
        if med["deferred"]:
            print(f"  {'':<13} messages claimed but put back unsent meanwhile: " + ", ".join(
                f"{v:.0f} ({k})" for k, v in sorted(med["deferred"].items())))
    print(f"  herald / alertmanager throughput: {thr['herald'] / thr['alertmanager']:.2f}x "
          f"(target >= 2x)")
    print()
    print(f"(b) single event: POST -> webhook arrival, {args.samples} samples each, "
          f"{1000 * args.gap:.0f} ms apart")
    for name in lat:
        print(f"  {name:<13} p50 {percentile(lat[name], 50):7.2f} ms  p99 "
              f"{percentile(lat[name], 99):7.2f} ms  max {max(lat[name]):7.2f} ms   "
              f"(POST answered: p50 {percentile(ack[name], 50):.2f} ms)")
    for p in (50, 99):
        print(f"  herald / alertmanager p{p} latency: "
              f"{percentile(lat['herald'], p) / percentile(lat['alertmanager'], p):.2f}x "
              f"(target <= 1x)")
    print()
    print("herald acknowledges an event only once it and its message are committed with "
          "synchronous=FULL,\nand records every attempt the same way; alertmanager keeps "
          "alerts in memory.")
    print(f"load average after: {load_after}")


if __name__ == "__main__":
    main()
