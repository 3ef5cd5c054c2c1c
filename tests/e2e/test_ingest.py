"""POST /v1/events: idempotency and every kind of bad input, none of which harms the daemon."""

import json
import threading
import unittest

from harness import HeraldTestCase, event, wait_for


class IngestTest(HeraldTestCase):

    def setUp(self):
        self.h = self.start_stack()
        # Rooms only: each event makes exactly two messages (slack + webhook).
        self.setup_acme(self.h, people=False)
        self.valid_count = 0

    def assert_still_healthy(self):
        """After a rejected request the daemon is alive and a valid event still works."""
        h = self.h
        self.assertEqual(h.request("GET", "/healthz").status, 200)
        self.valid_count += 1
        before = len(h.deliveries(client="acme"))
        r = h.request("POST", "/v1/events", "ingest",
                      event(f"evt-ok-{self.valid_count}",
                            occurred_at=f"2026-12-04T1{self.valid_count}:00:00Z"))
        self.assertEqual(r.status, 202, r.body)
        self.assertEqual(r.body["messages"], 2)
        h.wait_deliveries(before + 2, client="acme")

    def assert_error(self, r, status, code, field=None):
        self.assertEqual(r.status, status, r.body)
        self.assertIsInstance(r.body, dict, r.body)
        err = r.body["error"]
        self.assertEqual(err["code"], code, err)
        self.assertTrue(err["message"])
        if field is not None:
            self.assertEqual(err.get("field"), field, err)

    def test_duplicate_event_id(self):
        h = self.h
        first = h.request("POST", "/v1/events", "ingest", event("evt-dup"))
        self.assertEqual(first.status, 202, first.body)
        self.assertEqual(first.body, {"event_id": "evt-dup", "incident": "INC-42",
                                      "messages": 2, "duplicate": False})
        h.wait_deliveries(2, client="acme")
        wait_for(lambda: len(self.hooks.requests()) == 2, message="2 requests")
        # Same id, even with a different body: the first one counts.
        for body in (event("evt-dup"), event("evt-dup", phase="recovery", summary="other")):
            again = h.request("POST", "/v1/events", "ingest", body)
            self.assertEqual(again.status, 200, again.body)
            self.assertIs(again.body["duplicate"], True)
            self.assertEqual(again.body["event_id"], "evt-dup")
            self.assertEqual(again.body["incident"], "INC-42")
        # Nothing new is queued or sent: a later valid event's messages arrive, and only they.
        self.assert_still_healthy()
        wait_for(lambda: len(self.hooks.requests()) == 4, message="4 requests")
        self.assertEqual(len(h.deliveries(client="acme")), 4)
        self.assertEqual(len(self.hooks.requests()), 4)
        inc = h.ok("GET", "/v1/incidents/INC-42?client=acme", "audit")
        self.assertEqual([e["event_id"] for e in inc["timeline"] if e["type"] == "event"],
                         ["evt-dup", "evt-ok-1"])

    def test_concurrent_duplicates(self):
        """The same event posted at once from many clients is accepted exactly once."""
        results = []
        lock = threading.Lock()

        def post():
            r = self.h.request("POST", "/v1/events", "ingest", event("evt-race"))
            with lock:
                results.append((r.status, r.body))

        threads = [threading.Thread(target=post) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(len(results), 8)
        statuses = sorted(status for status, _ in results)
        self.assertEqual(statuses, [200] * 7 + [202], results)
        for status, body in results:
            self.assertIs(body["duplicate"], status == 200)
            self.assertEqual(body["messages"], 2)
        self.h.wait_deliveries(2, client="acme")
        wait_for(lambda: len(self.hooks.requests()) == 2, message="2 requests")
        self.assert_still_healthy()
        self.assertEqual(len(self.hooks.requests()), 4)

    def test_many_events_at_once(self):
        """Distinct events in parallel: every one accepted, every message delivered once."""
        results = []
        lock = threading.Lock()

        def post(n):
            r = self.h.request("POST", "/v1/events", "ingest",
                               event(f"evt-{n}", incident=f"INC-{n}"))
            with lock:
                results.append(r.status)

        threads = [threading.Thread(target=post, args=(n,)) for n in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(results, [202] * 20)
        items = self.h.wait_deliveries(40, client="acme")
        wait_for(lambda: len(self.hooks.requests()) == 40, message="40 requests")
        ids = [r["headers"]["webhook-id"] for r in self.hooks.requests("/hooks/siem")]
        self.assertEqual(sorted(ids), sorted(d["id"] for d in items if d["channel"] == "webhook"))

    def test_out_of_order_event_does_not_roll_back(self):
        h = self.h
        r = h.request("POST", "/v1/events", "ingest",
                      event("evt-new", phase="eradication", occurred_at="2026-12-04T12:00:00Z"))
        self.assertEqual(r.status, 202, r.body)
        old = h.request("POST", "/v1/events", "ingest",
                        event("evt-old", phase="containment", occurred_at="2026-12-04T09:00:00Z"))
        self.assertIn(old.status, (200, 202), old.body)
        self.assertIs(old.body["duplicate"], False)
        self.assertIs(old.body.get("out_of_order"), True, old.body)
        inc = h.ok("GET", "/v1/incidents/INC-42?client=acme", "audit")
        self.assertEqual(inc["phase"], "eradication")
        events = {e["event_id"]: e for e in inc["timeline"] if e["type"] == "event"}
        self.assertIs(events["evt-new"]["applied"], True)
        self.assertIs(events["evt-old"]["applied"], False)

    def test_client_without_plan_or_deleted(self):
        h = self.h
        h.ok("PUT", "/v1/clients/quiet", "admin", {"name": "Quiet Ltd"})
        r = h.request("POST", "/v1/events", "ingest", event("evt-q", client="quiet"))
        self.assertEqual(r.status, 202, r.body)
        self.assertEqual(r.body["messages"], 0)
        self.assertEqual(h.request("DELETE", "/v1/clients/quiet", "admin").status, 204)
        r = h.request("POST", "/v1/events", "ingest", event("evt-q2", client="quiet"))
        self.assert_error(r, 422, "unknown_client", "client")
        self.assert_still_healthy()

    def test_malformed_json(self):
        for raw in (b'{"event_id": "evt-x", ', b"not json", b"", b"\xff\xfe{}"):
            with self.subTest(raw=raw):
                r = self.h.request("POST", "/v1/events", "ingest", raw=raw)
                self.assert_error(r, 400, "malformed_json")
        self.assert_still_healthy()

    def test_unknown_phase(self):
        r = self.h.request("POST", "/v1/events", "ingest", event("evt-p", phase="panic"))
        self.assert_error(r, 422, "invalid_phase", "phase")
        self.assertIn("panic", r.body["error"]["message"])
        self.assertEqual(self.h.deliveries(client="acme"), [])
        self.assert_still_healthy()

    def test_unknown_client(self):
        r = self.h.request("POST", "/v1/events", "ingest", event("evt-c", client="globex"))
        self.assert_error(r, 422, "unknown_client", "client")
        self.assertEqual(self.h.deliveries(), [])
        self.assert_still_healthy()

    def test_other_invalid_fields(self):
        cases = [
            (dict(event("e1"), extra=1), "unknown_field", "extra"),
            ({k: v for k, v in event("e2").items() if k != "incident"}, "missing_field",
             "incident"),
            (event("e3", severity="apocalyptic"), "invalid_severity", "incident.severity"),
            (event("e4", occurred_at="yesterday"), "invalid_field", "occurred_at"),
            ([1, 2, 3], "invalid_event", None),
        ]
        for body, code, field in cases:
            with self.subTest(code=code, field=field):
                r = self.h.request("POST", "/v1/events", "ingest", body)
                self.assert_error(r, 422, code, field)
        self.assertEqual(self.h.deliveries(), [])
        self.assert_still_healthy()

    def test_body_too_large(self):
        limit = 1024 * 1024
        # Valid JSON up to the last byte, so only the size can be the reason.
        body = event("evt-big")
        body["details"] = {"pad": ""}
        base = len(json.dumps(body).encode())
        body["details"]["pad"] = "x" * (limit + 1 - base)
        raw = json.dumps(body).encode()
        self.assertEqual(len(raw), limit + 1)
        r = self.h.request("POST", "/v1/events", "ingest", raw=raw)
        self.assert_error(r, 413, "body_too_large")
        self.assertEqual(self.h.deliveries(), [])
        self.assert_still_healthy()


if __name__ == "__main__":
    unittest.main()
