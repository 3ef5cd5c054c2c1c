"""What the benchmarks share: starting a herald on a config file, API calls, a lean HTTP
client, a loopback webhook receiver that reports arrival times, and /proc readings."""

import base64
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

TOKEN = "bench-token"


def start_herald(herald, workdir, config):
    """Starts `herald serve` on `config`; returns (process, port) once it listens."""
    log = open(os.path.join(workdir, "herald.log"), "w+")
    proc = subprocess.Popen([herald, "serve", "--config", config], stdout=log, stderr=log)
    deadline = time.time() + 30
    while time.time() < deadline:
        log.seek(0)
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", log.read())
        if m:
            return proc, int(m.group(1))
        time.sleep(0.02)
    proc.kill()
    sys.exit("herald did not start")


def call(conn, method, path, body=None, token=None):
    """One request with the benchmark token (or `token`) on a kept-alive connection:
    (status, body)."""
    headers = {"Authorization": f"Bearer {token or TOKEN}", "Content-Type": "application/json"}
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers=headers)
    r = conn.getresponse()
    return r.status, r.read()


# --- shared by ingest_wrk, latency, memory, alertmanager and soak ----------------------------


BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(BENCH_DIR)


def write_config(workdir, delivery=None, extra="", log_level="info", smtp_port=9):
    """A herald config for a benchmark: port 0, a database in `workdir`, the bench token with
    every scope, loopback receivers allowed, SMTP on `smtp_port` (9: nothing listens), optional
    [delivery] keys (a dict value is written as an inline table). Returns its path."""
    lines = [f"""[server]
listen = "127.0.0.1:0"
[storage]
database = "{workdir}/herald.db"
[[tokens]]
name = "bench"
sha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"
scopes = ["admin", "audit", "ingest"]
[smtp]
url = "smtp://127.0.0.1:{smtp_port}"
from = "Herald <herald@msp.example>"
[network]
allow_private = ["127.0.0.0/8"]
[log]
level = "{log_level}"
"""]
    if delivery:
        lines.append("[delivery]")
        for key, value in delivery.items():
            if isinstance(value, dict):
                value = "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items()) + " }"
            else:
                value = json.dumps(value)
            lines.append(f"{key} = {value}")
    lines.append(extra)
    path = os.path.join(workdir, "herald.toml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def pipelined_ceiling(port, request, reply_bytes, greeting=b"", connections=4,
                      per_connection=3000):
    """Requests (or SMTP transactions) per second a receiver answers when the client is not
    the limit: each connection writes all of them pipelined at once, then reads the answers
    (`reply_bytes` each, after `greeting`)."""
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
    want = len(greeting) + reply_bytes * per_connection
    started = time.perf_counter()

    def one(s):
        s.sendall(request * per_connection)
        got = 0
        while got < want:
            chunk = s.recv(1 << 20)
            if not chunk:
                raise RuntimeError("receiver closed the connection")
            got += len(chunk)

    threads = [threading.Thread(target=one, args=(s,)) for s in socks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - started
    for s in socks:
        s.close()
    return connections * per_connection / took


def all_deliveries(conn, client):
    """Every delivery of `client` (GET /v1/deliveries, page after page)."""
    items, cursor = [], None
    while True:
        q = {"client": client, "limit": 500}
        if cursor:
            q["cursor"] = cursor
        page = must(conn, "GET", "/v1/deliveries?" + urllib.parse.urlencode(q))
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


def must(conn, method, path, body=None, token=None):
    """call(), exiting on any answer other than 2xx; returns the parsed JSON (or None)."""
    status, data = call(conn, method, path, body, token)
    if status >= 300:
        sys.exit(f"{method} {path} -> {status} {data[:300]!r}")
    return json.loads(data) if data else None


def metric(text, name):
    """The sum of every sample of metric `name` (any labels) in a /metrics text."""
    total = 0.0
    for m in re.finditer(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? ([0-9.e+-]+)$", text, re.M):
        total += float(m.group(1))
    return total


def metrics_text(conn):
    conn.request("GET", "/metrics")
    return conn.getresponse().read().decode()


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, -(-len(values) * p // 100) - 1))
    return values[int(k)]


def load_average():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def proc_status(pid):
    """VmRSS, VmHWM (KiB), the number of open file descriptors of a process, and of them
    the sockets and the rest (files, pipes, eventfds...)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    sockets = files = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:"):
            sockets += 1
        else:
            files += 1
    out["fds"], out["sockets"], out["files"] = sockets + files, sockets, files
    return out


MEMORY_GAUGES = ("herald_heap_in_use_bytes", "herald_heap_free_bytes",
                 "herald_sqlite_memory_bytes")


def memory_gauges(metrics):
    """herald's own account of its memory from a /metrics text: malloc's bytes in use and kept
    free, and SQLite's share of them (bytes)."""
    out = dict.fromkeys(MEMORY_GAUGES, 0.0)
    for line in metrics.splitlines():
        name, _, value = line.partition(" ")
        if name in out:
            out[name] = float(value)
    return out


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_event(key, client="acme", phase="containment"):
    """An event that is its own incident and carries `key` to the webhook (details)."""
    return {"event_id": key, "client": client,
            "incident": {"id": key, "title": "Bench", "severity": "critical"},
            "phase": phase, "summary": "bench", "details": {"bench_key": key}}


def setup_webhook_client(conn, url, client="acme", secret=True):
    """One client, one webhook endpoint at `url` and one rule sending every containment event
    to it at once: one event in, one webhook out."""
    must(conn, "PUT", f"/v1/clients/{client}", {"name": "Acme"})
    body = {"type": "webhook", "url": url}
    if secret:
        body["secret"] = "whsec_" + base64.b64encode(b"bench-secret-0123456789abcdef").decode()
    must(conn, "PUT", f"/v1/clients/{client}/endpoints/hook", body)
    must(conn, "PUT", f"/v1/clients/{client}/plan",
         {"rules": [{"id": "all", "phases": ["containment"], "endpoints": ["hook"],
                     "min_severity": "low", "delay": "0s"}]})


class RawClient:
    """A lean keep-alive HTTP/1.1 client on one socket (http.client costs more CPU per request
    than the daemons under test spend on some of them). Content-Length answers only."""

    def __init__(self, port, host="127.0.0.1"):
        self.addr = (host, port)
        self.sock = None
        self.buf = b""

    def _connect(self):
        self.sock = socket.create_connection(self.addr)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def post(self, path, body, headers=b""):
        """POSTs `body` (bytes); returns (status, response body). `headers`: extra raw lines."""
        req = (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Content-Type: application/json\r\n" + headers +
               b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        for attempt in (0, 1):
            if self.sock is None:
                self._connect()
            try:
                self.sock.sendall(req)
                return self._read()
            except (ConnectionError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _read(self):
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("closed by peer")
            self.buf += chunk
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("closed by peer")
            rest += chunk
        body, self.buf = rest[:length], rest[length:]
        if close:
            self.close()
        return status, body

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def auth_header(token=TOKEN):
    return b"Authorization: Bearer " + token.encode() + b"\r\n"


# The receiver: a raw asyncio HTTP/1.1 server in its own process (keep-alive, pipelining,
# answers 200 at once). For every request whose body holds "bench_key": "K" it prints
# "K <arrival time>" on its standard output; Arrivals reads them as they come.

RECEIVER_CODE = r'''
import asyncio, re, signal, sys, time
KEY = re.compile(rb'"bench_key"\s*:\s*"([^"]*)"')
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
out = sys.stdout.buffer

class Receiver(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buf = transport, b""
    def data_received(self, data):
        now = time.time()
        self.buf += data
        answers, lines = [], []
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                break
            length = 0
            for line in self.buf[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            total = end + 4 + length
            if len(self.buf) < total:
                break
            m = KEY.search(self.buf, end + 4, total)
            if m:
                lines.append(m.group(1) + b" %.6f\n" % now)
            self.buf = self.buf[total:]
            answers.append(OK)
        if answers:
            self.transport.write(b"".join(answers))
        if lines:
            out.write(b"".join(lines))
            out.flush()

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Receiver, "127.0.0.1", 0, backlog=4096)
    out.write(b"port %d\n" % server.sockets[0].getsockname()[1])
    out.flush()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()

asyncio.run(main())
'''


class Arrivals:
    """Starts the receiver process and collects {key: first arrival time}."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", RECEIVER_CODE],
                                     stdout=subprocess.PIPE)
        first = self.proc.stdout.readline().split()
        if len(first) != 2 or first[0] != b"port":
            sys.exit("the webhook receiver did not start")
        self.port = int(first[1])
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.times = {}
        self.requests = 0
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            key, _, at = line.decode().partition(" ")
            with self.cond:
                self.requests += 1
                self.times.setdefault(key, float(at))
                self.cond.notify_all()

    def wait(self, key, timeout):
        """The arrival time of `key`, or None after `timeout` seconds."""
        deadline = time.time() + timeout
        with self.cond:
            while key not in self.times:
                left = deadline - time.time()
                if left <= 0:
                    return None
                self.cond.wait(left)
            return self.times[key]

    def wait_count(self, keys, timeout):
        """Waits until every key of `keys` arrived; returns how many did."""
        deadline = time.time() + timeout
        with self.cond:
            while True:
                n = sum(1 for k in keys if k in self.times)
                left = deadline - time.time()
                if n == len(keys) or left <= 0:
                    return n
                self.cond.wait(min(left, 0.5))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def post_burst(port, path, bodies, workers, headers=b""):
    """POSTs every body (bytes) from `workers` keep-alive connections as fast as they are
    answered. Returns (start time, end time, {status: count})."""
    lock = threading.Lock()
    it = iter(bodies)
    statuses = {}

    def worker():
        c = RawClient(port)
        mine = {}
        while True:
            with lock:
                body = next(it, None)
            if body is None:
                break
            status, _ = c.post(path, body, headers)
            mine[status] = mine.get(status, 0) + 1
        c.close()
        with lock:
            for k, v in mine.items():
                statuses[k] = statuses.get(k, 0) + v

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    started = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return started, time.time(), statuses


def delivery_settings(pairs):
    """--herald-delivery KEY=VALUE options as a [delivery] table (integers where they are)."""
    out = {}
    for kv in pairs:
        key, _, value = kv.partition("=")
        out[key] = int(value) if value.isdigit() else value
    return out


def fsync_ms(directory, n=50):
    """Median time of a 4 KiB write + fdatasync in `directory`, overwriting a file already
    written (as SQLite reuses its WAL): what one durable commit costs on this disk right now;
    herald's figures move with it."""
    path = os.path.join(directory, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    times = []
    try:
        os.write(fd, b"\0" * 4096 * 16)
        os.fsync(fd)
        for i in range(n):
            os.pwrite(fd, b"\1" * 4096, 4096 * (i % 16))
            t = time.perf_counter()
            os.fdatasync(fd)
            times.append((time.perf_counter() - t) * 1000)
    finally:
        os.close(fd)
        os.unlink(path)
    return percentile(times, 50)
