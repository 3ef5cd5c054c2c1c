#!/usr/bin/python3
"""Fan-out: one event to RECIPIENTS recipients across channels, timed from the POST until the
last message arrived at its loopback receiver; every attempt recorded as in production
(attempt row, message update, hash-chained audit records, synchronous=FULL).

Starts its own receivers (one process, raw asyncio: an HTTP/1.1 server playing the chat
services, the generic webhook receivers and the Twilio Messages API, and an SMTP sink) and its
own herald (the binary given) on a temporary database with one client that has:

  --email N     contacts reached by email (one SMTP relay: the sink)
  --sms N       contacts reached by SMS (one Twilio-like API: the HTTP receiver)
  --chat N      chat endpoints, spread over slack, teams, mattermost, discord and googlechat
  --webhook N   signed generic webhook endpoints

(default 2,500 of each: 10,000), and one rule sending a `containment` event
to all of them. It posts one event and reports the time from the POST to its 202 (planning
and committing every message), to the first and to the last arrival, the due -> arrival
percentiles, and a per-channel breakdown.

Rate limits are not what is measured: the benchmark's config sets
`rate_limits = { slack = "none", sms = "none" }` (the defaults follow Slack's 1 message/s per
webhook and Twilio's 1 segment/s per sender, which would make 2,500 SMS take 42 minutes), and
--concurrency / --destination-concurrency / --server-concurrency set `[delivery] concurrency`,
`destination_concurrency` and `server_concurrency` when given (otherwise herald's defaults
apply).

Before the run it measures the receivers' own ceilings (pipelined requests and pipelined SMTP
transactions from raw sockets) and reports the CPU they used during the run, so it is plain
whether they were the bottleneck.

    bench/fanout.py build/herald
    bench/fanout.py build/herald --email 10000 --sms 0 --chat 0 --webhook 0
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
from benchlib import call, cpu_seconds, must, percentile  # noqa: E402

CHAT_TYPES = ["slack", "teams", "mattermost", "discord", "googlechat"]
SMS_SID = "ACbench"
OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
SMS_BODY = b'{"sid": "SMbench", "status": "queued"}'
SMS_OK = (b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: " +
          str(len(SMS_BODY)).encode() + b"\r\n\r\n" + SMS_BODY)


# --- the receivers (run in their own process: --receiver) -----------------------------------

# (key, arrival time): the key is the message id where the request carries one (webhook-id,
# Twilio's idempotency token, X-Herald-Message-Id), else "path:" + the chat endpoint's path.
RECORDS = []
CONNECTIONS = {"http": 0, "smtp": 0}


class HttpReceiver(asyncio.Protocol):
    """Pipelined HTTP/1.1 with Content-Length bodies, keep-alive; answers at once. GET /__count
    answers how many messages arrived (both receivers)."""

    def connection_made(self, transport):
        CONNECTIONS["http"] += 1
        self.transport = transport
        self.buf = b""

    def data_received(self, data):
        self.buf += data
        out = []
        now = time.time()
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = self.buf[:end]
            lines = head.split(b"\r\n")
            length = 0
            key = None
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name in (b"webhook-id", b"i-twilio-idempotency-token"):
                    key = value.strip().decode()
            total = end + 4 + length
            if len(self.buf) < total:
                break
            self.buf = self.buf[total:]
            method, path = lines[0].split(b" ")[:2]
            if method == b"GET" and path == b"/__count":
                body = str(len(RECORDS)).encode()
                out.append(b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(body)).encode() +
                           b"\r\n\r\n" + body)
                continue
            if path.startswith(b"/2010-04-01/"):
                out.append(SMS_OK)
            else:
                out.append(OK)
            if key is None and path.startswith(b"/chat/"):
                key = "path:" + path.decode()
            if key is not None:
                RECORDS.append((key, now))
        if out:
            self.transport.write(b"".join(out))


class SmtpSink(asyncio.Protocol):
    """Enough ESMTP for libcurl and the ceiling: EHLO (PIPELINING, 8BITMIME, no STARTTLS), MAIL,
    RCPT, DATA, RSET, NOOP, QUIT; commands may be pipelined. Each message's X-Herald-Message-Id
    is recorded when its final dot arrives."""

    def connection_made(self, transport):
        CONNECTIONS["smtp"] += 1
        self.transport = transport
        self.buf = b""
        self.in_data = False
        transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, data):
        self.buf += data
        out = []
        while True:
            if self.in_data:
                end = self.buf.find(b"\r\n.\r\n")
                if end < 0:
                    break
                message = self.buf[:end]
                self.buf = self.buf[end + 5:]
                self.in_data = False
                m = re.search(rb"^X-Herald-Message-Id: *(\S+)", message, re.M | re.I)
                if m:
                    RECORDS.append((m.group(1).decode(), time.time()))
                out.append(b"250 2.0.0 queued\r\n")
                continue
            end = self.buf.find(b"\r\n")
            if end < 0:
                break
            line = self.buf[:end]
            self.buf = self.buf[end + 2:]
            verb = line[:4].upper()
            if verb == b"EHLO":
                out.append(b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n")
            elif verb == b"DATA":
                self.in_data = True
                out.append(b"354 go ahead\r\n")
                # A message can start right after "DATA\r\n": loop on (in_data).
            elif verb == b"QUIT":
                out.append(b"221 bye\r\n")
                self.transport.write(b"".join(out))
                self.transport.close()
                return
            else:  # HELO, MAIL, RCPT, RSET, NOOP
                out.append(b"250 OK\r\n")
        if out:
            self.transport.write(b"".join(out))


def run_receivers(port_file, out):
    async def main():
        loop = asyncio.get_running_loop()
        web = await loop.create_server(HttpReceiver, "127.0.0.1", 0, backlog=1024)
        smtp = await loop.create_server(SmtpSink, "127.0.0.1", 0, backlog=1024)
        with open(port_file + ".tmp", "w") as f:
            f.write(f"{web.sockets[0].getsockname()[1]} {smtp.sockets[0].getsockname()[1]}")
        os.rename(port_file + ".tmp", port_file)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)

        def forget():
            RECORDS.clear()
            CONNECTIONS.update(http=0, smtp=0)

        loop.add_signal_handler(signal.SIGUSR1, forget)
        await stop.wait()
        web.close()
        smtp.close()

    asyncio.run(main())
    with open(out, "w") as f:
        f.write(json.dumps({"connections": CONNECTIONS}) + "\n")
        for key, at in RECORDS:
            f.write(f"{key} {at:.6f}\n")


def http_ceiling(port):
    body = b'{"type":"bench"}'
    request = (b"POST /ceiling HTTP/1.1\r\nHost: 127.0.0.1\r\nwebhook-id: c\r\n"
               b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    return benchlib.pipelined_ceiling(port, request, len(OK))


def smtp_ceiling(port):
    message = (b"From: a@b.example\r\nTo: c@d.example\r\nX-Herald-Message-Id: c\r\n"
               b"Subject: ceiling\r\n\r\n" + b"x" * 1500 + b"\r\n.\r\n")
    request = b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n" + message
    replies = len(b"250 OK\r\n") * 2 + len(b"354 go ahead\r\n") + len(b"250 2.0.0 queued\r\n")
    return benchlib.pipelined_ceiling(port, request, replies, greeting=b"220 sink ESMTP\r\n")


# --- herald -----------------------------------------------------------------------------------

def write_config(workdir, web_port, smtp_port, delivery):
    """benchlib's config with SMTP and the SMS API on the receivers."""
    return benchlib.write_config(workdir, delivery=delivery, smtp_port=smtp_port, extra=f"""[sms]
base_url = "http://127.0.0.1:{web_port}"
account_sid = "{SMS_SID}"
auth_token = "bench-sms-token"
from = "+15550000000"
""")


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def put_all(port, requests, workers=16):
    """PUTs every (path, body) from `workers` keep-alive connections (setup, not timed)."""
    todo = list(reversed(requests))
    lock = threading.Lock()
    errors = []

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port)
        while True:
            with lock:
                if not todo:
                    return
                path, body = todo.pop()
            status, data = call(conn, "PUT", path, body)
            if status >= 300:
                errors.append((path, status, data[:200]))

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit(f"{len(errors)} setup requests refused, first: {errors[0]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("herald")
    ap.add_argument("--email", type=int, default=2500)
    ap.add_argument("--sms", type=int, default=2500)
    ap.add_argument("--chat", type=int, default=2500)
    ap.add_argument("--webhook", type=int, default=2500)
    ap.add_argument("--concurrency", type=int, default=None,
                    help="[delivery] concurrency (default: herald's own)")
    ap.add_argument("--destination-concurrency", type=int, default=None,
                    help="[delivery] destination_concurrency (default: herald's own)")
    ap.add_argument("--server-concurrency", type=int, default=None,
                    help="[delivery] server_concurrency (default: herald's own)")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--perf", metavar="FILE",
                    help="record herald with `perf record -e cpu-clock --call-graph dwarf` from just before the "
                         "POST until every attempt is recorded, into FILE")
    ap.add_argument("--keep", metavar="DIR",
                    help="work in DIR (database, herald.log) and leave it there")
    args = ap.parse_args()

    delivery = {"rate_limits": {"slack": "none", "sms": "none"}}
    if args.concurrency:
        delivery["concurrency"] = args.concurrency
    if args.destination_concurrency:
        delivery["destination_concurrency"] = args.destination_concurrency
    if args.server_concurrency:
        delivery["server_concurrency"] = args.server_concurrency
    total = args.email + args.sms + args.chat + args.webhook

    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep or tmp
        os.makedirs(workdir, exist_ok=True)
        port_file = os.path.join(workdir, "receivers.port")
        arrivals_file = os.path.join(workdir, "arrivals.txt")
        for stale in (port_file, arrivals_file):
            if os.path.exists(stale):
                os.remove(stale)
        receiver = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--receiver",
                                     port_file, arrivals_file])
        herald = None
        try:
            deadline = time.time() + 10
            while not os.path.exists(port_file):
                if time.time() > deadline or receiver.poll() is not None:
                    sys.exit("the receivers did not start")
                time.sleep(0.02)
            with open(port_file) as f:
                web_port, smtp_port = (int(p) for p in f.read().split())
            http_max = http_ceiling(web_port)
            smtp_max = smtp_ceiling(smtp_port)

            config = write_config(workdir, web_port, smtp_port, delivery)
            herald, port = benchlib.start_herald(args.herald, workdir, config)
            conn = http.client.HTTPConnection("127.0.0.1", port)
            setup_started = time.perf_counter()
            must(conn, "PUT", "/v1/clients/acme", {"name": "Acme", "timezone": "UTC"})
            puts = []
            for i in range(args.email):
                puts.append((f"/v1/clients/acme/contacts/mail{i}",
                             {"name": f"Mail Person {i}", "roles": ["staff"],
                              "email": f"person{i}@acme.example", "timezone": "UTC",
                              "channels": ["email"]}))
            for i in range(args.sms):
                puts.append((f"/v1/clients/acme/contacts/sms{i}",
                             {"name": f"Sms Person {i}", "roles": ["staff"],
                              "phone": f"+1555{i:07d}", "timezone": "UTC",
                              "channels": ["sms"]}))
            endpoints = []
            for i in range(args.chat):
                kind = CHAT_TYPES[i % len(CHAT_TYPES)]
                name = f"chat{i}"
                endpoints.append(name)
                puts.append((f"/v1/clients/acme/endpoints/{name}",
                             {"type": kind,
                              "url": f"http://127.0.0.1:{web_port}/chat/{kind}/{name}"}))
            for i in range(args.webhook):
                name = f"hook{i}"
                endpoints.append(name)
                puts.append((f"/v1/clients/acme/endpoints/{name}",
                             {"type": "webhook",
                              "url": f"http://127.0.0.1:{web_port}/hooks/{name}"}))
            put_all(port, puts)
            rule = {"id": "everyone", "phases": ["containment"], "min_severity": "low",
                    "delay": "0s", "quiet_hours": "ignore"}
            if args.email or args.sms:
                rule["roles"] = ["staff"]
                rule["channels"] = [c for c, n in (("email", args.email), ("sms", args.sms)) if n]
            if endpoints:
                rule["endpoints"] = endpoints
            must(conn, "PUT", "/v1/clients/acme/plan", {"rules": [rule]})
            print(f"setup: {args.email + args.sms} contacts and {len(endpoints)} endpoints in "
                  f"{time.perf_counter() - setup_started:.1f} s (not timed)")

            _, before = call(conn, "GET", "/metrics")
            before = before.decode()
            receiver.send_signal(signal.SIGUSR1)  # forget the ceilings' requests
            time.sleep(0.2)
            cpu_before = cpu_seconds(receiver.pid)
            herald_cpu_before = cpu_seconds(herald.pid)
            load = benchlib.load_average()
            fsync = benchlib.fsync_ms(workdir)

            perf = None
            if args.perf:
                perf = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "--call-graph", "dwarf,16384",
                                         "-p", str(herald.pid), "-o", args.perf])
                time.sleep(1)  # perf attaches
            event = {"event_id": "evt-fanout", "client": "acme",
                     "incident": {"id": "INC-1", "title": "Fan-out", "severity": "critical"},
                     "phase": "containment", "summary": "one event, every recipient"}
            posted_at = time.time()
            status, data = call(conn, "POST", "/v1/events", event)
            acked_at = time.time()
            if status != 202:
                sys.exit(f"POST /v1/events -> {status} {data[:300]!r}")
            planned = json.loads(data)["messages"]
            if planned != total:
                sys.exit(f"the event planned {planned} messages, expected {total}")

            counter = http.client.HTTPConnection("127.0.0.1", web_port)
            deadline = time.time() + args.timeout
            while True:
                counter.request("GET", "/__count")
                arrived = int(counter.getresponse().read())
                if arrived >= total:
                    break
                if time.time() > deadline:
                    sys.exit(f"timed out: {arrived} of {total} arrived")
                time.sleep(0.01)
            cpu_used = cpu_seconds(receiver.pid) - cpu_before

            # Every attempt recorded: the delivered counter reaches the total.
            while True:
                _, after = call(conn, "GET", "/metrics")
                after = after.decode()
                delivered = sum(float(m.group(1)) for m in re.finditer(
                    r'^herald_attempts_total\{channel="\w+",outcome="delivered"\} (\S+)',
                    after, re.M))
                if delivered >= total or time.time() > deadline:
                    break
                time.sleep(0.05)
            recorded_at = time.time()
            if perf is not None:
                perf.send_signal(signal.SIGINT)
                perf.wait(60)
            herald_cpu = cpu_seconds(herald.pid) - herald_cpu_before

            items = benchlib.all_deliveries(conn, "acme")
        finally:
            if herald is not None:
                herald.send_signal(signal.SIGTERM)
                herald.wait(30)
            receiver.send_signal(signal.SIGTERM)
            receiver.wait(30)

        arrivals = {}
        requests_seen = 0
        with open(arrivals_file) as f:
            connections = json.loads(f.readline())["connections"]
            for line in f:
                key, at = line.split()
                requests_seen += 1
                arrivals.setdefault(key, float(at))  # the first arrival counts

    def commits(text):
        return benchlib.metric(text, "herald_store_commits_total")

    by_channel = {}
    due_to_arrival = []
    missing = []
    for d in items:
        if d["endpoint"] and d["channel"] == "chat":
            kind = CHAT_TYPES[int(d["endpoint"][4:]) % len(CHAT_TYPES)]
            key = f"path:/chat/{kind}/{d['endpoint']}"
        else:
            key = d["id"]
        if d["status"] != "delivered" or key not in arrivals:
            missing.append((d["id"], d["status"], d.get("last_error")))
            continue
        at = arrivals[key]
        due = parse_time(d["planned_at"])
        label = d["channel"]
        c = by_channel.setdefault(label, {"n": 0, "first": at, "last": at, "lat": []})
        c["n"] += 1
        c["first"] = min(c["first"], at)
        c["last"] = max(c["last"], at)
        c["lat"].append((at - due) * 1000)
        due_to_arrival.append((at - due) * 1000)
    if missing or len(items) != total:
        sys.exit(f"{len(items) - len(missing)} of {total} delivered and arrived; "
                 f"first missing: {missing[:3]}")

    last = max(arrivals.values())
    first = min(arrivals.values())
    span = last - posted_at
    print(f"fan-out: {total} messages (email {args.email}, sms {args.sms}, chat {args.chat}, "
          f"webhook {args.webhook}); load average {load} and fdatasync {fsync:.2f} ms at the "
          f"start")
    print(f"POST -> 202: {1000 * (acked_at - posted_at):.0f} ms (plan and commit {total} "
          f"messages); first arrival {1000 * (first - posted_at):.0f} ms after the POST")
    print(f"POST -> last arrival: {span:.2f} s ({total / span:.0f} messages/s); "
          f"every attempt recorded {recorded_at - posted_at:.2f} s after the POST (polled)")
    print(f"due -> arrival: p50 {percentile(due_to_arrival, 50):.0f} ms  "
          f"p99 {percentile(due_to_arrival, 99):.0f} ms  max {max(due_to_arrival):.0f} ms")
    print("per channel:       n   first     last   p50 due->arrival   p99")
    for label in ("email", "sms", "chat", "webhook"):
        c = by_channel.get(label)
        if not c:
            continue
        print(f"  {label:8} {c['n']:6} {1000 * (c['first'] - posted_at):6.0f} ms "
              f"{1000 * (c['last'] - posted_at):6.0f} ms {percentile(c['lat'], 50):9.0f} ms "
              f"{percentile(c['lat'], 99):9.0f} ms")
    n_commits = commits(after) - commits(before)
    print(f"store: {n_commits:.0f} fsync'd commits from the POST to the last record "
          f"({total / max(n_commits, 1):.1f} messages per commit)")
    print(f"herald: {herald_cpu:.2f} s CPU until every attempt was recorded "
          f"({100 * herald_cpu / max(recorded_at - posted_at, 1e-9):.0f}% of one core)")
    print(f"receivers: ceilings {http_max:.0f} HTTP requests/s, {smtp_max:.0f} SMTP messages/s "
          f"(pipelined); during the run they used {cpu_used:.2f} s CPU over {span:.2f} s "
          f"({100 * cpu_used / span:.0f}% of one core); {requests_seen} requests/messages on "
          f"{connections['http']} HTTP and {connections['smtp']} SMTP connections")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--receiver":
        run_receivers(sys.argv[2], sys.argv[3])
    else:
        main()
