#!/usr/bin/python3
"""A real HTTP receiver for webhooks and chat payloads, for tests and `make run`.

Every POST (any path) is appended to the --out file as one JSON line:
{"method", "path", "headers": {lower-cased}, "body", "received_at"}, and answered with
--status; the first --fail-first requests of each path get --fail-status instead (with
Retry-After when --retry-after is given); --delay holds every answer back that many seconds
(after the request is recorded), to keep a sender's attempt in flight. GET / lists what arrived. Runs until SIGTERM.
Standard library only.
"""

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.seen_per_path = {}
        self.received = []


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass  # one line per request is printed below instead

        def _answer(self, status, body=b"", content_type="text/plain", extra=None):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if body:
                self.wfile.write(body)

        def _receive(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            args = state.args
            with state.lock:
                n = state.seen_per_path.get(self.path, 0) + 1
                state.seen_per_path[self.path] = n
                record = {
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body.decode("utf-8", "replace"),
                    "received_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
                state.received.append(record)
                with open(args.out, "a", encoding="utf-8") as f:
                    f.write(json.dumps(record) + "\n")
                    f.flush()
            if n <= args.fail_first:
                status = args.fail_status
                extra = {"Retry-After": str(args.retry_after)} if args.retry_after is not None else {}
            else:
                status, extra = args.status, {}
            if args.delay > 0:
                time.sleep(args.delay)
            print(f"{self.command} {self.path} {len(body)} bytes -> {status}", flush=True)
            answer = b"" if status in (204, 304) else (b"ok" if status < 300 else b"failed")
            self._answer(status, answer, extra=extra)

        do_POST = _receive
        do_PUT = _receive
        do_PATCH = _receive

        def do_GET(self):
            if self.path != "/":
                self._answer(404, b"not found")
                return
            with state.lock:
                listing = {"received": len(state.received), "requests": state.received[-50:]}
            self._answer(200, json.dumps(listing, indent=2).encode(), "application/json")

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090, help="0 picks a free port")
    parser.add_argument("--out", required=True, help="JSON lines file, appended")
    parser.add_argument("--port-file", help="write the bound port here once listening")
    parser.add_argument("--status", type=int, default=200)
    parser.add_argument("--fail-first", type=int, default=0,
                        help="the first N requests of each path get --fail-status")
    parser.add_argument("--fail-status", type=int, default=503)
    parser.add_argument("--delay", type=float, default=0,
                        help="seconds to wait before answering each request")
    parser.add_argument("--retry-after", type=int, default=None,
                        help="Retry-After seconds sent with failures")
    args = parser.parse_args()

    server = ThreadingHTTPServer((args.host, args.port), make_handler(State(args)))
    server.daemon_threads = True
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    print(f"webhook receiver listening on {args.host}:{port}", flush=True)

    def shutdown(*_):
        # shutdown() blocks until serve_forever returns: call it off the main thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
