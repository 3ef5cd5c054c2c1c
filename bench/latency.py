#!/usr/bin/python3
"""Latency from an event's POST to its webhook's arrival at a loopback receiver, p50/p99,
idle (one event at a time) and under load (while a background generator posts R events/s).

Starts its own receiver (benchlib.Arrivals: a raw asyncio server in its own process, noting
each request's arrival time) and its own herald (the binary given, default settings) on a
temporary database. The probe client "acme" has one signed webhook endpoint and one rule
sending every containment event to it at once; the background events go to ten other clients
with one webhook endpoint each on the same receiver (each event one message), so the load is
ingest and delivery both. The background generator is a separate process (two paced
keep-alive connections per 100 events/s), so that the probe's timing does not share a Python
interpreter with it.

For each rate: SAMPLES probe events, one at a time, GAP apart (+ up to 10 ms of random
jitter, so the probes do not lock step with the generator); the latency is the receiver's
arrival time minus the time just before the POST was sent (the same host clock). "put back"
counts the messages the dispatcher claimed and put back unsent meanwhile
(herald_deferred_total: a destination's concurrency limit, its rate limit or breaker).

    bench/latency.py build/herald                      # idle, then 100 and 400 events/s
    bench/latency.py build/herald --rates 0 200 800 --samples 300
"""
import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import Arrivals, RawClient, auth_header, must, percentile  # noqa: E402

LOAD_CLIENTS = 10


def generate(port, rate, stop_file):
    """The background generator (its own process): `rate` events/s, paced, until stop_file
    exists; prints how many were posted and refused."""
    workers = max(2, int(2 * rate / 100))
    lock = threading.Lock()
    counter = [0, 0]  # posted, refused
    started = time.time()
    run = f"{int(started)}-{os.getpid()}"

    def worker(w):
        c = RawClient(port)
        i = w
        while not os.path.exists(stop_file):
            wait = started + i / rate - time.time()
            if wait > 0:
                time.sleep(wait)
            key = f"load-{run}-{i}"
            body = json.dumps(benchlib.bench_event(key, client=f"load{i % LOAD_CLIENTS}"))
            status, _ = c.post("/v1/events", body.encode(), auth_header())
            with lock:
                counter[0] += 1
                counter[1] += status >= 300
            i += workers

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - started
    print(f"{counter[0]} {counter[1]} {elapsed:.3f}", flush=True)


def deferred(conn):
    """herald_deferred_total, every reason: claimed messages put back unsent."""
    return benchlib.metric(benchlib.metrics_text(conn), "herald_deferred_total")


def probe(port, arrivals, samples, gap, tag):
    client = RawClient(port)
    total, acked = [], []
    for i in range(samples):
        key = f"probe-{tag}-{i}"
        body = json.dumps(benchlib.bench_event(key)).encode()
        t0 = time.time()
        status, _ = client.post("/v1/events", body, auth_header())
        t1 = time.time()
        if status != 202:
            sys.exit(f"probe answered {status}")
        at = arrivals.wait(key, 60)
        if at is None:
            sys.exit(f"probe {key} did not arrive within 60 s")
        total.append((at - t0) * 1000)
        acked.append((t1 - t0) * 1000)
        time.sleep(gap + random.random() * 0.01)
    client.close()
    return total, acked


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("herald")
    ap.add_argument("--rates", type=float, nargs="+", default=[0, 100, 400],
                    help="background events per second, 0 = idle (default: 0 100 400)")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--gap", type=float, default=0.05, help="seconds between probes")
    ap.add_argument("--herald-delivery", action="append", default=[], metavar="KEY=VALUE",
                    help="a [delivery] setting for herald, e.g. destination_concurrency=16")
    args = ap.parse_args()
    delivery = benchlib.delivery_settings(args.herald_delivery)

    with tempfile.TemporaryDirectory() as workdir:
        arrivals = Arrivals()
        proc = None
        try:
            proc, port = benchlib.start_herald(args.herald, workdir,
                                               benchlib.write_config(workdir, delivery))
            conn = http.client.HTTPConnection("127.0.0.1", port)
            benchlib.setup_webhook_client(conn, arrivals.url + "/acme")
            for n in range(LOAD_CLIENTS):
                benchlib.setup_webhook_client(conn, arrivals.url + f"/load{n}",
                                              client=f"load{n}")
            probe(port, arrivals, 10, 0.01, "warm")
            print(f"herald {args.herald} (delivery settings: {delivery or 'defaults'}), "
                  f"{args.samples} probes per rate, "
                  f"load average {benchlib.load_average()}, fdatasync p50 "
                  f"{benchlib.fsync_ms(workdir):.2f} ms")
            print(f"{'background':>16} {'POST -> webhook p50':>20} {'p99':>9} {'max':>9}"
                  f"   {'POST -> 202 p50':>15} {'p99':>9}   {'put back':>8}")
            for rate in args.rates:
                gen = None
                stop_file = os.path.join(workdir, f"stop-{rate}")
                if rate > 0:
                    gen = subprocess.Popen([sys.executable, os.path.abspath(__file__),
                                            "--generate", str(port), str(rate), stop_file],
                                           stdout=subprocess.PIPE, text=True)
                    time.sleep(2)  # let the load settle
                put_back = deferred(conn)
                total, acked = probe(port, arrivals, args.samples, args.gap, f"r{rate:g}")
                label = "idle"
                if gen is not None:
                    open(stop_file, "w").close()
                    posted, refused, elapsed = gen.communicate(timeout=60)[0].split()
                    label = f"{int(posted) / float(elapsed):.0f} events/s"
                    if int(refused):
                        label += f" ({refused} refused)"
                put_back = deferred(conn) - put_back
                print(f"{label:>16} {percentile(total, 50):>17.2f} ms {percentile(total, 99):>6.2f}"
                      f" ms {max(total):>6.2f} ms   {percentile(acked, 50):>12.2f} ms "
                      f"{percentile(acked, 99):>6.2f} ms   {put_back:>8.0f}", flush=True)
                time.sleep(1)
            print(f"load average after: {benchlib.load_average()}")
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(30)
            arrivals.stop()


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--generate":
        generate(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4])
    else:
        main()
