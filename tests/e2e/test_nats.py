"""NATS JetStream source: a real nats-server -js; events published on the subject are handled
like POST /v1/events and acknowledged only once committed; bad messages are recorded and
terminated; a SIGKILLed Herald picks up what was published while it was down."""

import json
import sqlite3
import subprocess
import unittest

from harness import (DELIVERY_TIMEOUT, HeraldTestCase, closed_port, event, wait_for,
                     write_config)
from natsclient import NatsClient, NatsServer, wait_fully_acknowledged

STREAM = "INCIDENTS"
SUBJECT = "incidents.phase"
CONSUMER = "herald"


def nats_config(url, extra=""):
    return (f'[nats]\nurl = "{url}"\nstream = "{STREAM}"\nsubject = "{SUBJECT}"\n'
            f'consumer = "{CONSUMER}"\n{extra}')


class NatsTest(HeraldTestCase):

    def start_nats(self, **kw):
        server = NatsServer(self.workdir, **kw)
        self.addCleanup(server.stop)
        return server

    def client(self, server):
        c = NatsClient(server.port)
        self.addCleanup(c.close)
        return c

    def start_with_nats(self, url, extra=""):
        self.mail = self.start_mail()
        self.hooks = self.start_hooks()
        self.config = write_config(self.workdir, self.mail.port, self.hooks.port,
                                   extra=nats_config(url, extra))
        h = self.start_herald(self.config)
        self.setup_acme(h, people=False, slack=False)
        return h

    def nats_state(self, h):
        return h.request("GET", "/readyz").body.get("sources", {}).get("nats", {})

    def wait_subscribed(self, h):
        wait_for(lambda: self.nats_state(h).get("state") == "subscribed", DELIVERY_TIMEOUT,
                 "the NATS subscription")

    def metric(self, h, name):
        text = h.request("GET", "/metrics").body
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split(" ")[1])
        return 0.0

    def test_events_duplicates_and_rejections(self):
        nats = self.start_nats()
        h = self.start_with_nats(nats.url)
        self.wait_subscribed(h)
        bus = self.client(nats)
        # The stream did not exist: Herald created it, capturing the subject.
        info = bus.stream_info(STREAM)
        self.assertEqual(info["config"]["subjects"], [SUBJECT], info)

        bus.publish(SUBJECT, event("evt-1", phase="containment"))
        h.wait_deliveries(1, client="acme")
        [hook] = self.hooks.requests("/hooks/siem")
        body = json.loads(hook["body"])
        self.assertEqual(body["phase"], "containment")
        self.assertEqual(body["incident"]["id"], "INC-42")

        # A duplicate, then three messages that can never be events, then a good one.
        bus.publish(SUBJECT, event("evt-1", phase="containment"))
        bus.publish(SUBJECT, b'{"event_id": "evt-x", "client": ')
        bus.publish(SUBJECT, event("evt-bad", phase="panic"))
        bus.publish(SUBJECT, event("evt-globex", client="globex"))
        bus.publish(SUBJECT, event("evt-2", phase="eradication"))
        h.wait_deliveries(2, client="acme")
        info = wait_fully_acknowledged(bus, STREAM, CONSUMER, 6, DELIVERY_TIMEOUT)
        self.assertEqual(info["num_redelivered"], 0, info)

        # Nothing new from the duplicate: one message per event, two events on the incident.
        incident = h.ok("GET", "/v1/incidents/INC-42?client=acme", "audit")
        self.assertEqual(incident["phase"], "eradication")
        self.assertEqual(len(h.deliveries(client="acme")), 2)
        self.assertEqual(len(self.hooks.requests("/hooks/siem")), 2)

        rejections = h.ok("GET", "/v1/sources/nats/rejections", "audit")["items"]
        self.assertEqual([r["code"] for r in rejections],
                         ["malformed_json", "invalid_phase", "unknown_client"], rejections)
        self.assertEqual([r["ref"] for r in rejections],
                         [f"{STREAM}:3", f"{STREAM}:4", f"{STREAM}:5"])
        self.assertEqual(rejections[0]["payload"], '{"event_id": "evt-x", "client": ')
        self.assertEqual(rejections[1]["field"], "phase")
        self.assertIn("panic", rejections[1]["message"])
        self.assertEqual(rejections[2]["subject"], SUBJECT)
        self.assertIn("globex", rejections[2]["message"])
        page = h.ok("GET", "/v1/sources/nats/rejections?limit=2", "audit")
        self.assertEqual(len(page["items"]), 2)
        rest = h.ok("GET", "/v1/sources/nats/rejections?cursor=" + page["next_cursor"], "audit")
        self.assertEqual([r["code"] for r in rest["items"]], ["unknown_client"])
        self.assertEqual(h.request("GET", "/v1/sources/kafka/rejections", "audit").status, 404)
        self.assertEqual(h.request("GET", "/v1/sources/nats/rejections", "ingest").status, 403)
        audit = h.ok("GET", "/v1/audit?kind=source.rejected", "audit")["items"]
        self.assertEqual([a["data"]["code"] for a in audit],
                         ["malformed_json", "invalid_phase", "unknown_client"])

        self.assertEqual(self.metric(h, 'herald_nats_messages_total{outcome="accepted"}'), 2)
        self.assertEqual(self.metric(h, 'herald_nats_messages_total{outcome="duplicate"}'), 1)
        self.assertEqual(self.metric(h, 'herald_nats_messages_total{outcome="rejected"}'), 3)
        self.assertEqual(self.metric(h, "herald_nats_up"), 1)
        wait_for(lambda: self.nats_state(h).get("pending") == 0
                 and self.nats_state(h).get("ack_pending") == 0, DELIVERY_TIMEOUT,
                 "/readyz to report no lag")
        wait_for(lambda: self.metric(h, "herald_nats_ack_pending") == 0
                 and self.metric(h, "herald_nats_pending") == 0, DELIVERY_TIMEOUT,
                 "/metrics to report no lag")
        # The events carry their source into the audit trail.
        received = h.ok("GET", "/v1/audit?kind=event.received", "audit")["items"]
        self.assertEqual([a["data"]["source"] for a in received], ["nats", "nats"])

    def test_published_while_killed_are_delivered_after_restart(self):
        nats = self.start_nats()
        # Batches of 8 and a short AckWait: the kill lands with messages delivered to Herald
        # and not yet acknowledged, which JetStream redelivers 2 s later.
        h = self.start_with_nats(nats.url, 'batch = 8\nack_wait = "2s"\n')
        self.wait_subscribed(h)
        bus = self.client(nats)
        bus.publish_many(SUBJECT, [json.dumps(event(f"evt-{i}", incident=f"INC-{i}"))
                                   for i in range(1, 101)])
        wait_for(lambda: self.metric(h, 'herald_nats_messages_total{outcome="accepted"}') >= 1,
                 DELIVERY_TIMEOUT, "the first events")
        h.kill()  # SIGKILL: no chance to finish anything
        acks = bus.publish_many(SUBJECT, [json.dumps(event(f"evt-{i}", incident=f"INC-{i}"))
                                          for i in range(101, 121)])
        self.assertEqual([a["seq"] for a in acks], list(range(101, 121)))
        before = bus.consumer_info(STREAM, CONSUMER)
        self.assertGreater(before["num_pending"] + before["num_ack_pending"], 0, before)

        # Redeliveries of what was in flight at the kill are absorbed by idempotency.
        h2 = self.start_herald(self.config, log_name="herald-2.log")
        h2.wait_deliveries(120, client="acme")
        wait_fully_acknowledged(bus, STREAM, CONSUMER, 120, DELIVERY_TIMEOUT)
        self.assertEqual(len(h2.deliveries(client="acme")), 120)
        incidents = [json.loads(r["body"])["incident"]["id"]
                     for r in self.hooks.requests("/hooks/siem")]
        self.assertEqual(sorted(set(incidents)), sorted(f"INC-{i}" for i in range(1, 121)))
        # One event each: the timeline of an incident shows a single phase change.
        received = h2.ok("GET", "/v1/audit?kind=event.received&limit=500", "audit")["items"]
        self.assertEqual(len(received), 120)

    def test_a_commit_that_fails_is_redelivered_not_lost(self):
        nats = self.start_nats()
        h = self.start_with_nats(nats.url)
        self.wait_subscribed(h)
        bus = self.client(nats)
        # Another process holds the database's write lock longer than Herald's busy timeout
        # (5 s): the event cannot be committed, so it must not be acknowledged either.
        blocker = sqlite3.connect(self.path("herald.db"), isolation_level=None, timeout=10)
        self.addCleanup(blocker.close)
        blocker.execute("BEGIN IMMEDIATE")
        bus.publish(SUBJECT, event("evt-1"))
        wait_for(lambda: self.metric(h, 'herald_nats_messages_total{outcome="retried"}') >= 1,
                 DELIVERY_TIMEOUT, "the failed commit to be handed back to JetStream")
        info = bus.consumer_info(STREAM, CONSUMER)
        self.assertEqual(info["ack_floor"]["stream_seq"], 0, info)
        blocker.execute("ROLLBACK")
        # JetStream redelivers it 5 s later; this time it is committed, then acknowledged.
        h.wait_deliveries(1, client="acme")
        wait_fully_acknowledged(bus, STREAM, CONSUMER, 1, DELIVERY_TIMEOUT)
        self.assertEqual(self.metric(h, 'herald_nats_messages_total{outcome="accepted"}'), 1)
        self.assertEqual(h.ok("GET", "/v1/sources/nats/rejections", "audit")["items"], [])

    def test_reconnects_when_the_server_comes_and_goes(self):
        # Herald starts before the bus: it is ready for HTTP, and keeps trying.
        port = closed_port()
        h = self.start_with_nats(f"nats://127.0.0.1:{port}")
        wait_for(lambda: self.nats_state(h).get("state") in ("connecting", "disconnected")
                 and "error" in self.nats_state(h), DELIVERY_TIMEOUT, "a connection error")
        self.assertEqual(h.request("GET", "/readyz").status, 200)
        self.assertEqual(self.metric(h, "herald_nats_up"), 0)

        nats = self.start_nats(port=port)
        self.wait_subscribed(h)
        bus = self.client(nats)
        bus.publish(SUBJECT, event("evt-1", incident="INC-1"))
        h.wait_deliveries(1, client="acme")

        # The server goes away and comes back (same store): Herald resubscribes and goes on.
        bus.close()
        nats.stop()
        wait_for(lambda: self.nats_state(h).get("state") != "subscribed", DELIVERY_TIMEOUT,
                 "Herald to notice the server went away")
        nats.start()
        self.wait_subscribed(h)
        bus = self.client(nats)
        bus.publish(SUBJECT, event("evt-2", incident="INC-2"))
        h.wait_deliveries(2, client="acme")
        wait_fully_acknowledged(bus, STREAM, CONSUMER, 2, DELIVERY_TIMEOUT)
        self.assertGreaterEqual(self.metric(h, "herald_nats_connects_total"), 2)

    def test_tls(self):
        # A self-signed certificate for localhost, trusted through [nats] ca_file.
        cert, key = self.path("nats.crt"), self.path("nats.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                        "-keyout", key, "-out", cert], check=True, capture_output=True)
        nats = self.start_nats(tls=(cert, key))
        h = self.start_with_nats(f"tls://localhost:{nats.port}", f'ca_file = "{cert}"\n')
        self.wait_subscribed(h)
        bus = NatsClient(nats.port, tls_ca=cert)
        self.addCleanup(bus.close)
        bus.publish(SUBJECT, event("evt-1"))
        h.wait_deliveries(1, client="acme")
        wait_fully_acknowledged(bus, STREAM, CONSUMER, 1, DELIVERY_TIMEOUT)

    def test_tls_refuses_an_untrusted_server(self):
        cert, key = self.path("nats.crt"), self.path("nats.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                        "-keyout", key, "-out", cert], check=True, capture_output=True)
        nats = self.start_nats(tls=(cert, key))
        # No ca_file: the system's CAs do not vouch for a self-signed certificate.
        h = self.start_with_nats(f"tls://localhost:{nats.port}")
        wait_for(lambda: "error" in self.nats_state(h), DELIVERY_TIMEOUT, "a TLS error")
        self.assertNotEqual(self.nats_state(h)["state"], "subscribed")
        self.assertIn("self-signed certificate", self.nats_state(h)["error"])
        self.assertEqual(self.metric(h, "herald_nats_up"), 0)

    def test_credentials_in_the_url_are_used_and_never_shown(self):
        secret = "s3cret-b4f1e9"
        nats = self.start_nats(args=["--user", "herald", "--pass", secret])
        h = self.start_with_nats(f"nats://herald:{secret}@127.0.0.1:{nats.port}")
        self.wait_subscribed(h)
        bus = NatsClient(nats.port, user="herald", password=secret)
        self.addCleanup(bus.close)
        bus.publish(SUBJECT, event("evt-1"))
        h.wait_deliveries(1, client="acme")

        # A wrong password: the error names the server, never the password.
        wrong = "wr0ng-7c2d"
        config = write_config(self.workdir, self.mail.port, self.hooks.port,
                              database=self.path("other.db"), name="other.toml",
                              extra=nats_config(f"nats://herald:{wrong}@127.0.0.1:{nats.port}"))
        other = self.start_herald(config, log_name="herald-other.log")
        wait_for(lambda: "error" in self.nats_state(other), DELIVERY_TIMEOUT, "an auth error")
        error = self.nats_state(other)["error"]
        self.assertIn("nats://***@127.0.0.1", error)
        self.assertNotIn(wrong, error)
        self.stop_herald(other)
        for log in (h.log_text(), other.log_text()):
            self.assertNotIn(secret, log)
            self.assertNotIn(wrong, log)


if __name__ == "__main__":
    unittest.main()
