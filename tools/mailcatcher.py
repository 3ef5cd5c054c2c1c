#!/usr/bin/python3
"""A real SMTP server that keeps every message it accepts, for tests and `make run`.

Each message is written to DIR/NNNN.eml and appended as one JSON line to DIR/messages.jsonl.
With --reply-code 550 (or 451, ...) every recipient is refused with that code instead.
Runs until SIGTERM or SIGINT. Needs Debian's python3-aiosmtpd (/usr/bin/python3).
"""

import argparse
import json
import os
import signal
import sys
import threading
import time

from aiosmtpd.controller import Controller

REPLY_TEXT = {
    421: "4.3.2 Service not available",
    450: "4.2.1 Mailbox unavailable, try again later",
    451: "4.3.0 Temporary failure, try again later",
    452: "4.3.1 Insufficient system storage",
    550: "5.1.1 User unknown",
    551: "5.1.6 User not local",
    552: "5.2.2 Mailbox full",
    553: "5.1.3 Mailbox name not allowed",
    554: "5.7.1 Transaction failed",
}


class Catcher:
    def __init__(self, out_dir, reply_code):
        self.out_dir = out_dir
        self.reply_code = reply_code
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reply_code >= 400:
            text = REPLY_TEXT.get(self.reply_code, "refused by mailcatcher")
            print(f"refused RCPT {address} with {self.reply_code}", flush=True)
            return f"{self.reply_code} {text}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        data = envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        with self.lock:
            self.count += 1
            number = self.count
            with open(os.path.join(self.out_dir, f"{number:04d}.eml"), "wb") as f:
                f.write(data)
            record = {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "data": data.decode("utf-8", "replace"),
                "received_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            with open(os.path.join(self.out_dir, "messages.jsonl"), "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
                f.flush()
        print(f"accepted {number:04d} from {envelope.mail_from} to "
              f"{', '.join(envelope.rcpt_tos)} ({len(data)} bytes)", flush=True)
        return "250 Message accepted for delivery"


class FreePortController(Controller):
    """Controller that can bind port 0: it learns the real port before its self-test."""

    def _trigger_server(self):
        if self.port == 0:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525, help="0 picks a free port")
    parser.add_argument("--out", required=True, help="directory for .eml files")
    parser.add_argument("--port-file", help="write the bound port here once listening")
    parser.add_argument("--reply-code", type=int, default=250,
                        help="answer every RCPT with this code (e.g. 550 or 451)")
    args = parser.parse_args()

    os.makedirs(args.out, exist_ok=True)
    controller = FreePortController(Catcher(args.out, args.reply_code), hostname=args.host,
                                    port=args.port)
    controller.start()
    port = controller.port
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)  # readers never see a half-written file
    print(f"mailcatcher listening on {args.host}:{port}", flush=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(3600):
        pass
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
