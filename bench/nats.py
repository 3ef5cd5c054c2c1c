#!/usr/bin/python3
"""NATS JetStream consumption: events per second Herald drains from a backlog, each committed
(synchronous=FULL) before its acknowledgement, and what HTTP ingest latency looks like while
it does.

Starts its own nats-server -js (temporary store) and publishes N events to the stream first;
then starts herald (the binary given) on a temporary database with one client, one contact and
one rule (every event plans and stores one message; nothing is delivered), and times from the
herald's start to the moment the consumer is fully acknowledged (num_pending 0,
num_ack_pending 0, ack floor at the last message). Meanwhile one connection posts an event to
POST /v1/events every 50 ms and records the latency.

    bench/nats.py build/herald --events 20000
    bench/nats.py build/herald --events 20000 --batch 16
"""
import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from natsclient import NatsClient, NatsServer  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import call  # noqa: E402
STREAM = "INCIDENTS"
SUBJECT = "incidents.phase"


def start_herald(herald, workdir, nats_url, batch=128):
    extra = ""
    if nats_url:
        extra = (f'[nats]\nurl = "{nats_url}"\nstream = "{STREAM}"\nsubject = "{SUBJECT}"\n'
                 f'consumer = "herald"\nbatch = {batch}\n')
    return benchlib.start_herald(herald, workdir, benchlib.write_config(workdir, extra=extra))




def event(event_id, incident):
    return {"event_id": event_id, "client": "acme",
            "incident": {"id": incident, "title": "Ransomware", "severity": "critical"},
            "phase": "containment", "summary": "isolated", "details": {"host": "FS01"}}


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))] if values else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("herald")
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=128, help="[nats] batch")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as workdir:
        nats = NatsServer(workdir)
        herald = None
        try:
            bus = NatsClient(nats.port, timeout=120)
            created = bus.request(f"$JS.API.STREAM.CREATE.{STREAM}", json.dumps(
                {"name": STREAM, "subjects": [SUBJECT], "storage": "file"}))
            if "error" in created:
                sys.exit(f"cannot create the stream: {created}")
            started = time.monotonic()
            for i in range(0, args.events, 5000):
                bus.publish_many(SUBJECT, [json.dumps(event(f"evt-{n}", f"INC-{n}"))
                                           for n in range(i, min(args.events, i + 5000))])
            print(f"published {args.events} events in {time.monotonic() - started:.2f} s")

            # The client, contact and plan first, by a herald without [nats]...
            herald, port = start_herald(args.herald, workdir, None)
            conn = http.client.HTTPConnection("127.0.0.1", port)
            for path, body in [
                    ("/v1/clients/acme", {"name": "Acme"}),
                    ("/v1/clients/acme/contacts/dana",
                     {"name": "Dana", "roles": ["legal"], "email": "dana@acme.example"}),
                    ("/v1/clients/acme/plan",
                     {"rules": [{"id": "r", "phases": ["containment"], "roles": ["legal"],
                                 "channels": ["email"], "delay": "1h"}]})]:
                status, answer = call(conn, "PUT", path, body)
                if status not in (200, 201):
                    sys.exit(f"PUT {path}: {status} {answer.decode()}")
            conn.close()
            herald.terminate()
            herald.wait()
            # ... then the timed run, from the start of the herald that consumes the backlog.
            t0 = time.monotonic()
            herald, port = start_herald(args.herald, workdir, nats.url, args.batch)
            conn = http.client.HTTPConnection("127.0.0.1", port)

            latencies = []
            done = threading.Event()

            def probe():
                probe_conn = http.client.HTTPConnection("127.0.0.1", port)
                n = 0
                while not done.is_set():
                    begin = time.monotonic()
                    status, _ = call(probe_conn, "POST", "/v1/events",
                                     event(f"http-{n}", f"HTTP-{n}"))
                    if status != 202:
                        sys.exit(f"HTTP ingest answered {status}: {_.decode()}")
                    latencies.append(time.monotonic() - begin)
                    n += 1
                    time.sleep(0.05)

            prober = threading.Thread(target=probe)
            prober.start()
            while True:
                info = bus.consumer_info(STREAM, "herald")
                if (info.get("num_pending") == 0 and info.get("num_ack_pending") == 0
                        and info.get("ack_floor", {}).get("stream_seq") == args.events):
                    break
                time.sleep(0.02)
            elapsed = time.monotonic() - t0
            with open(f"/proc/{herald.pid}/status") as f:
                peak_rss = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
            done.set()
            prober.join()

            status, metrics = call(conn, "GET", "/metrics")
            values = {}
            for line in metrics.decode().splitlines():
                if line.startswith("herald_"):
                    name, _, value = line.rpartition(" ")
                    values[name] = float(value)
            accepted = values.get('herald_nats_messages_total{outcome="accepted"}', 0)
            rejected = values.get('herald_nats_messages_total{outcome="rejected"}', 0)
            commits = values.get("herald_store_commits_total", 0)
            writes = values.get("herald_store_committed_writes_total", 0)
            if accepted != args.events:
                sys.exit(f"only {accepted:.0f} of {args.events} events accepted (see the log)")
            print(f"consumed (batch {args.batch}): {args.events} events in {elapsed:.2f} s: "
                  f"{args.events / elapsed:.0f} events/s, each committed before its ack")
            print(f"accepted {accepted:.0f}, rejected {rejected:.0f}; "
                  f"group commit: {writes:.0f} writes in {commits:.0f} commits "
                  f"({writes / max(commits, 1):.1f} per commit)")
            print(f"herald peak resident memory: {peak_rss / 1024:.0f} MiB")
            print(f"HTTP ingest meanwhile: {len(latencies)} events, "
                  f"p50 {percentile(latencies, 50) * 1000:.1f} ms  "
                  f"p99 {percentile(latencies, 99) * 1000:.1f} ms  "
                  f"max {max(latencies) * 1000:.1f} ms")
        finally:
            if herald is not None:
                herald.terminate()
                herald.wait()
            nats.stop()


if __name__ == "__main__":
    main()
