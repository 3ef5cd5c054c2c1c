"""A real nats-server with JetStream for the tests, and a tiny client speaking the NATS text
protocol over a socket (PUB, SUB, MSG, PING/PONG): enough to publish to a stream, wait for
JetStream's acknowledgement, and ask the JetStream API ($JS.API.*) questions.
"""

import itertools
import json
import os
import re
import socket
import ssl

from harness import START_TIMEOUT, Child, wait_for

NATS_SERVER = "/usr/sbin/nats-server"


class NatsServer:
    """nats-server -js on 127.0.0.1 with its store in a temp dir; port 0 picks a free one."""

    LISTEN_RE = re.compile(r"Listening for client connections on 127\.0\.0\.1:(\d+)")

    def __init__(self, workdir, name="nats", port=0, store_dir=None, tls=None, args=()):
        self.workdir = workdir
        self.name = name
        self.store_dir = store_dir or os.path.join(workdir, name + "-store")
        self.log_path = os.path.join(workdir, name + ".log")
        self.port = port
        self.tls = tls  # (certificate file, key file): clients must speak TLS
        self.args = list(args)  # more nats-server options, e.g. --user and --pass
        self.child = None
        self.start()

    def start(self):
        offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        argv = [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port or -1),
                "-sd", self.store_dir]
        if self.tls:
            argv += ["--tls", "--tlscert", self.tls[0], "--tlskey", self.tls[1]]
        argv += self.args
        self.child = Child(self.name, argv, self.log_path)

        def listening():
            if self.child.proc.poll() is not None:
                raise AssertionError(f"nats-server exited:\n{self.child.log_text()}")
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                f.seek(offset)
                m = self.LISTEN_RE.search(f.read())
            return int(m.group(1)) if m else None

        self.port = wait_for(listening, START_TIMEOUT, "nats-server to listen")
        return self

    @property
    def url(self):
        return f"nats://127.0.0.1:{self.port}"

    def stop(self):
        if self.child is not None:
            self.child.stop()
            self.child = None


class NatsClient:
    """One connection. Not thread-safe; every call waits for its answer."""

    def __init__(self, port, timeout=10.0, tls_ca=None, user=None, password=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.sids = itertools.count(1)
        self.inbox_sid = None
        self.inbox = "_INBOX.herald-test." + os.urandom(6).hex()
        info = self._line()
        if not info.startswith(b"INFO "):
            raise AssertionError(f"not a NATS server: {info!r}")
        if tls_ca:  # the server said tls_required: the handshake follows its INFO
            context = ssl.create_default_context(cafile=tls_ca)
            self.sock = context.wrap_socket(self.sock, server_hostname="localhost")
        connect = {"verbose": False, "pedantic": False, "headers": False,
                   "name": "herald-tests"}
        if user is not None:
            connect.update(user=user, **{"pass": password})
        self._send(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
        self._expect_pong()

    def close(self):
        self.sock.close()

    def _send(self, data):
        self.sock.sendall(data)

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError("NATS connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError("NATS connection closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _next(self):
        """The next MSG (subject, payload) or PONG; answers PINGs, raises on -ERR."""
        while True:
            line = self._line()
            if line == b"PING":
                self._send(b"PONG\r\n")
            elif line == b"PONG":
                return ("PONG", None)
            elif line.startswith(b"MSG "):
                parts = line.split(b" ")
                payload = self._exact(int(parts[-1]))
                return (parts[1].decode(), payload)
            elif line.startswith(b"-ERR"):
                raise AssertionError(f"NATS error: {line.decode()}")
            # +OK, INFO updates: ignored

    def _expect_pong(self):
        kind, _ = self._next()
        if kind != "PONG":
            raise AssertionError(f"expected PONG, got {kind}")

    def _subscribe_inbox(self):
        if self.inbox_sid is None:
            self.inbox_sid = next(self.sids)
            self._send(f"SUB {self.inbox}.* {self.inbox_sid}\r\n".encode())

    def publish_many(self, subject, payloads):
        """Publishes every payload with a reply subject, pipelined, and waits for JetStream's
        acknowledgement of each; returns the acknowledgements (dicts with `seq`)."""
        self._subscribe_inbox()
        out = bytearray()
        for i, payload in enumerate(payloads):
            data = payload if isinstance(payload, bytes) else payload.encode()
            out += f"PUB {subject} {self.inbox}.{i} {len(data)}\r\n".encode() + data + b"\r\n"
            if len(out) > 1 << 20:
                self._send(bytes(out))
                out.clear()
        self._send(bytes(out))
        acks = {}
        while len(acks) < len(payloads):
            kind, payload = self._next()
            if kind.startswith(self.inbox + "."):
                ack = json.loads(payload)
                if "error" in ack:
                    raise AssertionError(f"JetStream refused a message: {ack}")
                acks[int(kind.rsplit(".", 1)[1])] = ack
        return [acks[i] for i in range(len(payloads))]

    def publish(self, subject, payload):
        """Publishes one message to a stream; returns JetStream's acknowledgement."""
        if not isinstance(payload, (bytes, str)):
            payload = json.dumps(payload)
        return self.publish_many(subject, [payload])[0]

    def request(self, subject, payload=b""):
        """A request to the JetStream API; returns the decoded JSON answer."""
        self._subscribe_inbox()
        data = payload if isinstance(payload, bytes) else payload.encode()
        reply = f"{self.inbox}.r{next(self.sids)}"
        self._send(f"PUB {subject} {reply} {len(data)}\r\n".encode() + data + b"\r\n")
        while True:
            kind, answer = self._next()
            if kind == reply:
                return json.loads(answer)

    def consumer_info(self, stream, consumer):
        return self.request(f"$JS.API.CONSUMER.INFO.{stream}.{consumer}")

    def stream_info(self, stream):
        return self.request(f"$JS.API.STREAM.INFO.{stream}")


def wait_fully_acknowledged(client, stream, consumer, count, timeout):
    """Waits until the consumer has been delivered `count` messages and every one is
    acknowledged (or terminated): num_pending 0, num_ack_pending 0, ack floor at the end."""
    last = {}

    def done():
        info = client.consumer_info(stream, consumer)
        last.update(info)
        return (info.get("num_pending") == 0 and info.get("num_ack_pending") == 0
                and info.get("ack_floor", {}).get("stream_seq") == count)

    try:
        wait_for(done, timeout, "the consumer to be fully acknowledged", interval=0.1)
    except AssertionError:
        raise AssertionError(f"consumer not fully acknowledged: {json.dumps(last)}")
    return last
