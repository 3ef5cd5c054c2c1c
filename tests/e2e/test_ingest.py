"""POST /v1/events: idempotency and every kind of bad input, none of which harms the daemon."""

import json
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
