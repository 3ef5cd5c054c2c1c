"""End-to-end harness: runs the real herald binary against the repo's real receivers.

Every test gets its own temporary directory, database and ports (all port 0), so several
suites can run at once. HERALD_BIN names the binary; HERALD_SOURCE_DIR the repository.
"""

import base64
import email
import email.policy
import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

SOURCE_DIR = os.environ.get("HERALD_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
HERALD_BIN = os.environ.get("HERALD_BIN") or os.path.join(SOURCE_DIR, "build", "herald")
PYTHON = "/usr/bin/python3"  # the interpreter that has aiosmtpd
MAILCATCHER = os.path.join(SOURCE_DIR, "tools", "mailcatcher.py")
WEBHOOK_RECEIVER = os.path.join(SOURCE_DIR, "tools", "webhook_receiver.py")

# Sanitizer builds are several times slower; HERALD_E2E_SLOW scales every wait.
SLOW = float(os.environ.get("HERALD_E2E_SLOW", "1"))
DELIVERY_TIMEOUT = 30.0 * SLOW
START_TIMEOUT = 30.0 * SLOW
STOP_TIMEOUT = 15.0
POLL = 0.05

# Plaintext tokens by name; the config stores only their SHA-256.
TOKENS = {
    "admin": "tok-admin-7d1f0c5b2a",
    "audit": "tok-audit-93be41a6f0",
    "ingest": "tok-ingest-5c20e8d9b4",
    "all": "tok-all-e4a7b3c1d8",
}
TOKEN_SCOPES = {
    "admin": ["admin"],
    "audit": ["audit"],
    "ingest": ["ingest"],
    "all": ["admin", "audit", "ingest"],
}

SMS_SID = "ACtest"
SMS_AUTH = "secret-token-xyz"
SMS_FROM = "+15550000000"
MAIL_FROM = "Herald <herald@msp.example>"


def sha256_hex(text):
    return hashlib.sha256(text.encode()).hexdigest()


def wait_for(predicate, timeout=DELIVERY_TIMEOUT, message="condition", interval=POLL):
    """Polls predicate until it returns a truthy value (returned) or the timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {message}")
        time.sleep(interval)


def closed_port():
    """A port nothing listens on (bound, then released: nobody else asked for it just now)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            # A line is written whole with one write(); a partial last line is not yet ours.
            if line.endswith("\n"):
                out.append(json.loads(line))
    return out


class Child:
    """A helper process whose output goes to a log file."""

    def __init__(self, name, argv, log_path):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def log_text(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""


def wait_port_file(child, path):
    def ready():
        if child.proc.poll() is not None:
            raise AssertionError(f"{child.name} exited with {child.proc.returncode}:\n"
                                 f"{child.log_text()}")
        if os.path.exists(path):
            with open(path) as f:
                text = f.read().strip()
            return int(text) if text else None
        return None

    return wait_for(ready, START_TIMEOUT, f"{child.name} to listen")


class MailCatcher:
    """tools/mailcatcher.py: a real SMTP server keeping every message."""

    def __init__(self, workdir, name="mail", port=0, reply_code=None):
        self.out = os.path.join(workdir, name)
        port_file = os.path.join(workdir, name + ".port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        argv = [PYTHON, MAILCATCHER, "--port", str(port), "--port-file", port_file,
                "--out", self.out]
        if reply_code is not None:
            argv += ["--reply-code", str(reply_code)]
        self.child = Child(name, argv, os.path.join(workdir, name + ".log"))
        self.port = wait_port_file(self.child, port_file)

    def records(self):
        return read_jsonl(os.path.join(self.out, "messages.jsonl"))

    def emails(self):
        """Every accepted message, parsed, with its envelope: [(record, EmailMessage)]."""
        return [(r, email.message_from_string(r["data"], policy=email.policy.default))
                for r in self.records()]

    def stop(self):
        self.child.stop()


class WebhookReceiver:
    """tools/webhook_receiver.py: records every POST, answers as told."""

    def __init__(self, workdir, name="hooks", status=None, fail_first=None, fail_status=None,
                 retry_after=None, delay=None):
        self.out = os.path.join(workdir, name + ".jsonl")
        port_file = os.path.join(workdir, name + ".port")
        argv = [PYTHON, WEBHOOK_RECEIVER, "--port", "0", "--port-file", port_file,
                "--out", self.out]
        for flag, value in (("--status", status), ("--fail-first", fail_first),
                            ("--fail-status", fail_status), ("--retry-after", retry_after),
                            ("--delay", delay)):
            if value is not None:
                argv += [flag, str(value)]
        self.child = Child(name, argv, os.path.join(workdir, name + ".log"))
        self.port = wait_port_file(self.child, port_file)

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    def requests(self, path=None):
        return [r for r in read_jsonl(self.out) if path is None or r["path"] == path]

    def stop(self):
        self.child.stop()


class HoldingReceiver:
    """A webhook receiver in the test's own process that can hold requests: while `hold` is
    set, each request waits for `release` (at most 60 s), then is answered 200, or, with
    answer_held=False, its connection is closed without an answer. `seen` lists
    (webhook-id, body) in arrival order."""

    def __init__(self, test, answer_held=True):
        self.seen = []
        self.hold = threading.Event()
        self.release = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.seen.append((self.headers.get("webhook-id"), body))
                if receiver.hold.is_set():
                    receiver.release.wait(60)
                    if not answer_held:
                        return  # close without an answer
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        test.addCleanup(self.server.server_close)
        test.addCleanup(self.server.shutdown)
        test.addCleanup(self.release.set)

    def url(self, path="/hook"):
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"


def toml_string(value):
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def write_config(workdir, mail_port, hook_port, database=None, delivery=None, extra="",
                 name="herald.toml", listen="127.0.0.1:0", public_url=None):
    """Acknowledgement links name public_url: give listen a real port (closed_port()) then."""
    database = database or os.path.join(workdir, "herald.db")
    lines = [
        "[server]",
        f"listen = {toml_string(listen)}",
    ]
    if public_url is not None:
        lines.append(f"public_url = {toml_string(public_url)}")
    lines += [
        "",
        "[storage]",
        f"database = {toml_string(database)}",
        "",
    ]
    for token_name, plaintext in TOKENS.items():
        lines += [
            "[[tokens]]",
            f"name = {toml_string(token_name)}",
            f"sha256 = {toml_string(sha256_hex(plaintext))}",
            "scopes = [" + ", ".join(toml_string(s) for s in TOKEN_SCOPES[token_name]) + "]",
            "",
        ]
    lines += [
        "[smtp]",
        f'url = "smtp://127.0.0.1:{mail_port}"',
        f"from = {toml_string(MAIL_FROM)}",
        "",
        "[sms]",
        f'base_url = "http://127.0.0.1:{hook_port}"',
        f"account_sid = {toml_string(SMS_SID)}",
        f"auth_token = {toml_string(SMS_AUTH)}",
        f"from = {toml_string(SMS_FROM)}",
        "",
        "[network]",
        'allow_private = ["127.0.0.0/8"]',
        "",
    ]
    if delivery:
        lines.append("[delivery]")
        for key, value in delivery.items():
            lines.append(f"{key} = {toml_string(value) if isinstance(value, str) else value}")
        lines.append("")
    lines.append(extra)
    path = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body  # parsed JSON when the answer is JSON, else text

    def __repr__(self):
        return f"Response({self.status}, {self.body!r})"


SANITIZER_RE = re.compile(r".*(runtime error:|ERROR: AddressSanitizer|ERROR: LeakSanitizer|"
                          r"WARNING: ThreadSanitizer).*")

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Herald:
    """One `herald serve` process. Its output is appended to LOG across restarts."""

    LISTEN_RE = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")

    def __init__(self, config_path, log_path):
        self.config_path = config_path
        self.log_path = log_path
        self.proc = None
        self.port = None

    def start(self):
        offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([HERALD_BIN, "serve", "--config", self.config_path],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)

        def listening():
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                f.seek(offset)
                m = self.LISTEN_RE.search(f.read())
            if m:
                return int(m.group(1))
            if self.proc.poll() is not None:
                raise AssertionError(f"herald exited with {self.proc.returncode} before "
                                     f"listening:\n{self.log_text()}")
            return None

        self.port = wait_for(listening, START_TIMEOUT, "herald to log its port")
        wait_for(lambda: self.request("GET", "/readyz").status == 200, START_TIMEOUT,
                 "GET /readyz to answer 200")
        return self

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM; returns (exit code, seconds it took)."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = None
        self.log.close()
        return code, time.monotonic() - started

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()

    def log_text(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def request(self, method, path, token=None, body=None, raw=None, headers=None,
                timeout=30 * SLOW):
        """token is a TOKENS key, a literal token (str starting 'lit:'), or None."""
        url = f"http://127.0.0.1:{self.port}{path}"
        data = None
        hdrs = dict(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif raw is not None:
            data = raw
            hdrs.setdefault("Content-Type", "application/json")
        if token is not None:
            plaintext = token[4:] if token.startswith("lit:") else TOKENS[token]
            hdrs["Authorization"] = f"Bearer {plaintext}"
        req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
        try:
            with _OPENER.open(req, timeout=timeout) as r:
                status, rh, payload = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, rh, payload = e.code, e.headers, e.read()
        text = payload.decode("utf-8", "replace")
        parsed = text
        if "json" in (rh.get("Content-Type") or "") or text.startswith(("{", "[")):
            try:
                parsed = json.loads(text)
            except ValueError:
                pass
        return Response(status, rh, parsed)

    # Conveniences that assert success.
    def ok(self, method, path, token="all", body=None, expect=(200, 201, 202, 204)):
        r = self.request(method, path, token, body)
        if r.status not in ((expect,) if isinstance(expect, int) else expect):
            raise AssertionError(f"{method} {path} -> {r.status} {r.body!r}")
        return r.body

    def deliveries(self, **params):
        """All deliveries matching params, walking every page."""
        items, cursor = [], None
        while True:
            q = dict(params, limit=params.get("limit", 500))
            if cursor:
                q["cursor"] = cursor
            page = self.ok("GET", "/v1/deliveries?" + urllib.parse.urlencode(q), "audit")
            items += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return items

    def wait_deliveries(self, count, status="delivered", timeout=DELIVERY_TIMEOUT, **params):
        """Waits until `count` deliveries match params and all are in `status`."""
        last = []

        def done():
            nonlocal last
            last = self.deliveries(**params)
            return last if len(last) == count and all(d["status"] == status for d in last) \
                else None

        try:
            return wait_for(done, timeout, f"{count} deliveries {status} ({params})")
        except AssertionError as e:
            summary = [(d["id"], d["channel"], d["status"], d["attempts"], d["last_error"])
                       for d in last]
            raise AssertionError(f"{e}; last seen: {summary}") from None


def whsec():
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def event(event_id, client="acme", incident="INC-42", phase="containment", severity="critical",
          title="Ransomware on FS01", summary="FS01 isolated from the network",
          occurred_at="2026-12-04T10:00:00Z", details=None, drill=False):
    return {"event_id": event_id, "client": client,
            "incident": {"id": incident, "title": title, "severity": severity},
            "phase": phase, "occurred_at": occurred_at, "summary": summary,
            "details": details if details is not None else {"host": "FS01"}, "drill": drill}


class HeraldTestCase(unittest.TestCase):
    """Gives each test a temp dir and the means to start receivers and herald.

    Everything started is stopped at the end; herald must stop on SIGTERM with exit code 0
    within 15 s. When a test fails, the daemon's and the receivers' logs are printed.
    """

    def run(self, result=None):
        self.workdir = tempfile.mkdtemp(prefix="herald-e2e-")
        self.children = []
        self.heralds = []
        before = None
        if result is not None:
            before = len(result.failures) + len(result.errors)
        try:
            return super().run(result)
        finally:
            failed = result is not None and len(result.failures) + len(result.errors) > before
            if failed:
                self.dump_logs()
            if failed and os.environ.get("HERALD_E2E_KEEP"):
                print(f"kept {self.workdir}", file=sys.stderr)
            else:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def dump_logs(self):
        for name in sorted(os.listdir(self.workdir)):
            if name.endswith(".log"):
                with open(os.path.join(self.workdir, name), errors="replace") as f:
                    text = f.read()
                sys.stderr.write(f"\n===== {self._testMethodName}: {name} =====\n{text}\n")
        sys.stderr.flush()

    def path(self, *parts):
        return os.path.join(self.workdir, *parts)

    def start_mail(self, **kw):
        m = MailCatcher(self.workdir, **kw)
        self.addCleanup(m.stop)
        return m

    def start_hooks(self, **kw):
        h = WebhookReceiver(self.workdir, **kw)
        self.addCleanup(h.stop)
        return h

    def start_herald(self, config_path, log_name="herald.log"):
        h = Herald(config_path, self.path(log_name)).start()
        self.heralds.append(h)
        if len(self.heralds) == 1:
            self.addCleanup(self._stop_heralds)
        return h

    def stop_herald(self, h):
        code, took = h.stop()
        self.assertEqual(code, 0, f"herald exit code after SIGTERM (took {took:.1f}s)")
        self.assertLess(took, STOP_TIMEOUT)

    def _stop_heralds(self):
        for h in self.heralds:
            if h.running:
                self.stop_herald(h)
        for h in self.heralds:
            self.assert_no_sanitizer_report(h.log_text())

    def assert_no_sanitizer_report(self, text):
        """Sanitizer builds: UBSan reports do not change the exit code, so read the log."""
        m = SANITIZER_RE.search(text)
        if m:
            self.fail(f"sanitizer report in herald's output: {m.group(0)}")

    def start_stack(self, mail=None, hooks=None, delivery=None):
        """Receivers (with the given options) plus herald configured for them."""
        self.mail = self.start_mail(**(mail or {}))
        self.hooks = self.start_hooks(**(hooks or {}))
        self.config = write_config(self.workdir, self.mail.port, self.hooks.port,
                                   delivery=delivery)
        self.herald = self.start_herald(self.config)
        return self.herald

    # A small, common setup: client acme with people and rooms.
    def setup_acme(self, h, webhook_secret=None, people=True, slack=True, webhook=True,
                   plan=None):
        h.ok("PUT", "/v1/clients/acme", "admin",
             {"name": "Acme Corp", "timezone": "Europe/Berlin", "locale": "en"}, expect=201)
        endpoints = []
        if people:
            h.ok("PUT", "/v1/clients/acme/contacts/dana", "admin",
                 {"name": "Dana Lee", "roles": ["executive"], "email": "dana@acme.example",
                  "phone": "+15551234567", "timezone": "America/New_York",
                  "quiet_hours": None, "channels": ["email", "sms"]}, expect=201)
            h.ok("PUT", "/v1/clients/acme/contacts/lee", "admin",
                 {"name": "Lee Park", "roles": ["legal"], "email": "lee@acme.example",
                  "timezone": "Europe/Berlin", "channels": ["email"]}, expect=201)
        if slack:
            h.ok("PUT", "/v1/clients/acme/endpoints/soc-slack", "admin",
                 {"type": "slack", "url": f"{self.hooks.base}/slack/T000/B000/XXXXSECRET"},
                 expect=201)
            endpoints.append("soc-slack")
        if webhook:
            body = {"type": "webhook", "url": f"{self.hooks.base}/hooks/siem"}
            if webhook_secret:
                body["secret"] = webhook_secret
            h.ok("PUT", "/v1/clients/acme/endpoints/siem", "admin", body, expect=201)
            endpoints.append("siem")
        if plan is None:
            rules = []
            if people:
                rules.append({"id": "contain-people", "phases": ["containment", "eradication"],
                              "min_severity": "high", "roles": ["executive", "legal"],
                              "channels": ["email", "sms"], "delay": "0s",
                              "quiet_hours": "ignore"})
            if endpoints:
                rules.append({"id": "contain-rooms", "phases": ["containment", "eradication"],
                              "min_severity": "low", "endpoints": endpoints, "delay": "0s"})
            plan = {"rules": rules}
        return h.ok("PUT", "/v1/clients/acme/plan", "admin", plan, expect=200)


def verify_webhook_signature(secret, headers, body):
    """Standard Webhooks: v1,base64(HMAC-SHA256(key, id.timestamp.body))."""
    import hmac
    key = base64.b64decode(secret[len("whsec_"):])
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{body}".encode()
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    signatures = headers["webhook-signature"].split(" ")
    return f"v1,{expected}" in signatures
