#!/usr/bin/python3
"""Delivery throughput and latency: webhook deliveries per second to a keep-alive loopback
receiver, every attempt recorded (attempt row, message update and audit record, committed
with synchronous=FULL), and the latency from when a message was due to when it arrived.

Starts its own receiver (a raw asyncio HTTP/1.1 server in a separate process, keep-alive,
answering 200 at once) and its own herald (the binary given) on a temporary database with one
client, ENDPOINTS webhook endpoints on that receiver and one rule sending every event to all
of them.

Two modes:

  backlog (default): every event is ingested with the same occurred_at a few seconds ahead,
    so all EVENTS x ENDPOINTS messages fall due at the same instant; measures how fast the
    dispatcher drains them (deliveries/s) and the spread of due -> arrival.
  paced (--rate R): events are posted at R per second, each due when it is ingested; measures
    due -> arrival latency below saturation.

Before the run it measures the receiver's own ceiling (pipelined requests from raw sockets),
and reports the CPU the receiver used during the run, to show it is not the bottleneck.

    bench/delivery.py build/herald --events 500 --endpoints 10
    bench/delivery.py build/herald --events 500 --endpoints 10 --concurrency 64
    bench/delivery.py build/herald --events 600 --endpoints 5 --rate 40
"""
import argparse
import asyncio
import datetime
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import call  # noqa: E402
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


# --- the receiver (runs in its own process: --receiver) -------------------------------------

class Receiver(asyncio.Protocol):
    """Parses pipelined HTTP/1.1 requests with Content-Length bodies; answers 200 at once.
    Records (webhook-id, arrival time) for requests that carry one."""

    records = []

    def connection_made(self, transport):
        self.transport = transport
        self.buf = b""

    def data_received(self, data):
        self.buf += data
        out = []
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = self.buf[:end]
            length = 0
            msg_id = None
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"webhook-id":
                    msg_id = value.strip()
            total = end + 4 + length
            if len(self.buf) < total:
                break
            self.buf = self.buf[total:]
            if msg_id is not None:
                Receiver.records.append((msg_id, time.time()))
            out.append(RESPONSE)
        if out:
            self.transport.write(b"".join(out))


def run_receiver(port_file, out):
    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Receiver, "127.0.0.1", 0, backlog=1024)
        with open(port_file + ".tmp", "w") as f:
            f.write(str(server.sockets[0].getsockname()[1]))
        os.rename(port_file + ".tmp", port_file)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, lambda: Receiver.records.clear())
        await stop.wait()
        server.close()

    asyncio.run(main())
    with open(out, "w") as f:
        for msg_id, at in Receiver.records:
            f.write(f"{msg_id.decode()} {at:.6f}\n")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def receiver_ceiling(port, connections=4, per_connection=5000):
    """Requests per second the receiver answers when the client is not the limit."""
    body = b'{"type":"bench"}'
    request = (b"POST /ceiling HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    return benchlib.pipelined_ceiling(port, request, len(RESPONSE), connections=connections,
                                      per_connection=per_connection)


# --- herald -----------------------------------------------------------------------------------

def start_herald(herald, workdir, delivery):
    return benchlib.start_herald(herald, workdir, benchlib.write_config(workdir, delivery))




def must(conn, method, path, body=None):
    status, data = call(conn, method, path, body)
    if status >= 300:
        sys.exit(f"{method} {path} -> {status} {data[:300]!r}")
    return json.loads(data) if data else None


def rfc3339(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def delivered_count(conn):
    _, data = call(conn, "GET", "/metrics")
    total = 0
    for m in re.finditer(r'herald_attempts_total\{channel="webhook",outcome="(\w+)"\} (\d+)',
                         data.decode()):
        total += int(m.group(2)) if m.group(1) == "delivered" else 0
    return total


def attempt_count(conn):
    _, data = call(conn, "GET", "/metrics")
    return sum(int(m.group(1)) for m in re.finditer(r'herald_attempts_total\{[^}]*\} (\d+)',
                                                      data.decode()))


def commits(conn):
    _, data = call(conn, "GET", "/metrics")
    m = re.search(r"^herald_store_commits_total (\d+)", data.decode(), re.M)
    return int(m.group(1)) if m else 0


def percentile(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, int(round(p / 100 * len(values) + 0.5)) - 1))
    return values[k]


def post_events(port, events, workers, occurred_at=None, rate=0):
    """Posts events from `workers` keep-alive connections; paced at `rate` per second when
    rate > 0."""
    counter = iter(range(events))
    lock = threading.Lock()
    started = time.perf_counter()
    errors = []

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            if rate > 0:
                wait = started + i / rate - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            body = {"event_id": f"evt-{i}", "client": "acme",
                    "incident": {"id": f"INC-{i}", "title": "Bench", "severity": "high"},
                    "phase": "containment", "summary": "bench"}
            if occurred_at is not None:
                body["occurred_at"] = occurred_at
            status, data = call(conn, "POST", "/v1/events", body)
            if status != 202:
                errors.append((status, data[:200]))

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit(f"{len(errors)} events refused, first: {errors[0]}")
    return time.perf_counter() - started


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("herald")
    ap.add_argument("--events", type=int, default=500)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=None,
                    help="[delivery] concurrency (default: herald's own, 64)")
    ap.add_argument("--destination-concurrency", type=int, default=None,
                    help="[delivery] destination_concurrency (default: herald's own, 4)")
    ap.add_argument("--rate", type=float, default=0,
                    help="paced mode: events per second (default: backlog mode)")
    ap.add_argument("--lead", type=float, default=None,
                    help="backlog mode: seconds between now and the common due time")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--keep", metavar="DIR",
                    help="work in DIR (database, herald.log) and leave it there")
    args = ap.parse_args()

    delivery = {}
    if args.concurrency:
        delivery["concurrency"] = args.concurrency
    if args.destination_concurrency:
        delivery["destination_concurrency"] = args.destination_concurrency
    total = args.events * args.endpoints

    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep or tmp
        os.makedirs(workdir, exist_ok=True)
        port_file = os.path.join(workdir, "receiver.port")
        arrivals_file = os.path.join(workdir, "arrivals.txt")
        receiver = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--receiver",
                                     port_file, arrivals_file])
        herald = None
        try:
            deadline = time.time() + 10
            while not os.path.exists(port_file):
                if time.time() > deadline or receiver.poll() is not None:
                    sys.exit("the receiver did not start")
                time.sleep(0.02)
            with open(port_file) as f:
                rport = int(f.read())
            ceiling = receiver_ceiling(rport)

            herald, port = start_herald(args.herald, workdir, delivery)
            conn = http.client.HTTPConnection("127.0.0.1", port)
            must(conn, "PUT", "/v1/clients/acme", {"name": "Acme"})
            names = [f"hook{n}" for n in range(args.endpoints)]
            for name in names:
                must(conn, "PUT", f"/v1/clients/acme/endpoints/{name}",
                     {"type": "webhook", "url": f"http://127.0.0.1:{rport}/hooks/{name}"})
            must(conn, "PUT", "/v1/clients/acme/plan",
                 {"rules": [{"id": "all", "phases": ["containment"], "endpoints": names,
                             "min_severity": "low", "delay": "0s"}]})

            receiver.send_signal(signal.SIGUSR1)  # forget the ceiling's requests
            cpu_before = cpu_seconds(receiver.pid)
            commits_before = commits(conn)
            if args.rate > 0:
                due = None
                took = post_events(port, args.events, 8, rate=args.rate)
                print(f"posted {args.events} events in {took:.2f} s "
                      f"({args.events / took:.0f}/s paced at {args.rate:g}/s)")
            else:
                lead = args.lead if args.lead is not None else max(5.0, args.events / 150)
                due = float(int(time.time() + lead) + 1)
                took = post_events(port, args.events, 8, occurred_at=rfc3339(due))
                if time.time() > due:
                    sys.exit(f"ingest took {took:.1f} s, past the common due time: "
                             f"raise --lead")
                print(f"ingested {args.events} events ({total} messages) in {took:.2f} s; "
                      f"all due at {rfc3339(due)}")

            deadline = time.time() + args.timeout
            while True:
                n = delivered_count(conn)
                if n >= total:
                    recorded_at = time.time()
                    break
                if time.time() > deadline:
                    sys.exit(f"timed out: {n} of {total} delivered")
                # /metrics counts the messages table at each scrape: poll gently.
                time.sleep(0.25)
            cpu_used = cpu_seconds(receiver.pid) - cpu_before
            attempts = attempt_count(conn)
            commits_during = commits(conn) - commits_before

            items = benchlib.all_deliveries(conn, "acme")
        finally:
            if herald is not None:
                herald.send_signal(signal.SIGTERM)
                herald.wait(30)
            receiver.send_signal(signal.SIGTERM)
            receiver.wait(30)

        arrivals = {}
        with open(arrivals_file) as f:
            for line in f:
                msg_id, at = line.split()
                arrivals.setdefault(msg_id, float(at))  # the first arrival counts
        requests_seen = sum(1 for _ in open(arrivals_file))

    delivered = [d for d in items if d["status"] == "delivered"]
    if len(delivered) != total:
        sys.exit(f"{len(delivered)} of {total} delivered")
    first_arrival = min(arrivals.values())
    last_arrival = max(arrivals.values())
    # When each message fell due: planned_at (send_at moves when a message is held back by a
    # limit, planned_at does not).
    due_at = {d["id"]: parse_time(d["planned_at"]) for d in delivered}
    due_to_arrival = [(arrivals[d["id"]] - due_at[d["id"]]) * 1000 for d in delivered]
    due_to_recorded = [(parse_time(d["delivered_at"]) - due_at[d["id"]]) * 1000
                       for d in delivered]
    start = due if due is not None else min(due_at.values())
    span = recorded_at - start

    print(f"deliveries: {total} ({args.events} events x {args.endpoints} webhook endpoints), "
          f"attempts recorded: {attempts}, requests received: {requests_seen}")
    if due is not None:
        print(f"first arrival {1000 * (first_arrival - due):.0f} ms after the due time; "
              f"arrivals per second: " + " ".join(
                  str(sum(1 for a in arrivals.values() if int(a - due) == sec))
                  for sec in range(int(last_arrival - due) + 1)))
        print(f"throughput: {total / span:.0f} deliveries/s recorded "
              f"(common due time -> last recorded: {span:.2f} s); "
              f"{total / max(last_arrival - first_arrival, 1e-9):.0f}/s arriving "
              f"(first -> last arrival)")
    else:
        print(f"throughput: {total / span:.0f} deliveries/s (first due -> last recorded, "
              f"{span:.2f} s)")
    for name, values in (("due -> arrival", due_to_arrival),
                         ("due -> recorded", due_to_recorded)):
        print(f"{name}: p50 {percentile(values, 50):.1f} ms  p99 {percentile(values, 99):.1f} ms"
              f"  max {max(values):.1f} ms")
    print(f"store: {commits_during} fsync'd commits while delivering "
          f"({total / max(commits_during, 1):.1f} deliveries per commit)")
    print(f"receiver: ceiling {ceiling:.0f} requests/s (pipelined); during the run it used "
          f"{cpu_used:.2f} s CPU over {span:.2f} s ({100 * cpu_used / span:.0f}% of one core)")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--receiver":
        run_receiver(sys.argv[2], sys.argv[3])
    else:
        main()
