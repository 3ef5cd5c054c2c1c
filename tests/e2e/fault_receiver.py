#!/usr/bin/python3
"""A fast keep-alive loopback webhook receiver whose behaviour is chosen by the request path,
for the crash and fault-injection tests.

Every request that is read whole is appended to --out as one JSON line, written with one
write() to an O_APPEND file (so it is on disk even if this process is killed):
{"id": webhook-id, "path", "event": the body's event_id, "sha": sha256 of the body,
 "n": how many times this id was seen before (0 for the first), "action", "t"}.

The path picks the behaviour (the endpoint URL says what its receiver does):

  /ok/...                 200 at once
  /slow/MS/...            200 after MS milliseconds
  /hang/PCT/...           with probability PCT %: never answers (the connection is held open
                          until the client gives up)
  /reset/PCT/...          with probability PCT %: the connection is reset (RST, no answer)
  /flaky/PCT/...          with probability PCT %: 429 (Retry-After: 1), 500, 502 or 503
  /status/CODE/...        always CODE

Random choices come from sha256("SEED:webhook-id:n"): the same seed gives the same answer to
the same attempt, whatever the order the requests arrive in. Runs until SIGTERM.
"""

import argparse
import asyncio
import hashlib
import json
import os
import signal
import socket
import struct
import time


def draw(seed, msg_id, n, salt=""):
    """A number in [0, 100) fixed by (seed, id, attempt)."""
    digest = hashlib.sha256(f"{seed}:{msg_id}:{n}:{salt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10000 / 100.0


class Server:
    def __init__(self, args):
        self.seed = args.seed
        self.fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.seen = {}

    def record(self, msg_id, n, path, body, action):
        event = None
        try:
            event = json.loads(body).get("event_id")
        except (ValueError, AttributeError):
            pass
        line = json.dumps({"id": msg_id, "path": path, "event": event,
                           "sha": hashlib.sha256(body).hexdigest(), "n": n, "action": action,
                           "t": time.time()}) + "\n"
        os.write(self.fd, line.encode())

    def decide(self, msg_id, n, path):
        """(action, status, delay seconds) for attempt n (0: the first) of msg_id."""
        parts = path.strip("/").split("/")
        kind = parts[0] if parts else ""
        if kind == "slow":
            return "ok", 200, int(parts[1]) / 1000.0
        if kind == "hang" and draw(self.seed, msg_id, n) < float(parts[1]):
            return "hang", 0, 0
        if kind == "reset" and draw(self.seed, msg_id, n) < float(parts[1]):
            return "reset", 0, 0
        if kind == "flaky" and draw(self.seed, msg_id, n) < float(parts[1]):
            status = (429, 500, 502, 503)[int(draw(self.seed, msg_id, n, "code")) % 4]
            return f"status {status}", status, 0
        if kind == "status":
            return f"status {parts[1]}", int(parts[1]), 0
        return "ok", 200, 0

    async def handle(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else "/"
                length, msg_id = 0, ""
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    name = name.strip().lower()
                    if name == "content-length":
                        length = int(value)
                    elif name == "webhook-id":
                        msg_id = value.strip()
                body = await reader.readexactly(length) if length else b""
                n = self.seen.get(msg_id, 0)
                self.seen[msg_id] = n + 1
                action, status, delay = self.decide(msg_id, n, path)
                self.record(msg_id, n, path, body, action)
                if action == "hang":
                    await reader.read()  # until the client gives up
                    return
                if action == "reset":
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    return
                if delay:
                    await asyncio.sleep(delay)
                reason = {200: "OK", 429: "Too Many Requests"}.get(status, "Status")
                extra = "Retry-After: 1\r\n" if status == 429 else ""
                writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\n{extra}\r\n"
                             .encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port-file", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    server = Server(args)

    async def run():
        loop = asyncio.get_running_loop()
        srv = await asyncio.start_server(server.handle, "127.0.0.1", 0, backlog=1024)
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(srv.sockets[0].getsockname()[1]))
        os.rename(args.port_file + ".tmp", args.port_file)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        srv.close()

    asyncio.run(run())


if __name__ == "__main__":
    main()
