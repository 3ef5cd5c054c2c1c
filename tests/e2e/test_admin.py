"""Administration: validation, whole-plan rejection, secret redaction, plan preview."""

import json
import unittest

from harness import HeraldTestCase, whsec

DANA = {"name": "Dana Lee", "roles": ["executive"], "email": "dana@acme.example",
        "phone": "+15551234567", "timezone": "America/New_York",
        "quiet_hours": {"start": "22:00", "end": "07:00"}, "channels": ["email", "sms"]}


class AdminTest(HeraldTestCase):

    def setUp(self):
        self.h = self.start_stack()
        self.h.ok("PUT", "/v1/clients/acme", "admin",
                  {"name": "Acme Corp", "timezone": "Europe/Berlin", "locale": "en"}, expect=201)

    def assert_error(self, r, status, code, field):
        self.assertEqual(r.status, status, r.body)
        self.assertEqual(r.body["error"]["code"], code, r.body)
        self.assertEqual(r.body["error"].get("field"), field, r.body)

    def test_client_put_creates_then_updates(self):
        h = self.h
        updated = h.request("PUT", "/v1/clients/acme", "admin",
                            {"name": "Acme Corporation", "timezone": "Europe/Berlin",
                             "locale": "de"})
        self.assertEqual(updated.status, 200, updated.body)
        got = h.ok("GET", "/v1/clients/acme", "audit")
        self.assertEqual(got["name"], "Acme Corporation")
        self.assertEqual(got["locale"], "de")
        self.assertIn("acme", json.dumps(h.ok("GET", "/v1/clients", "admin")))
        self.assertEqual(h.request("GET", "/v1/clients/globex", "admin").status, 404)

    def test_contact_validation(self):
        h = self.h
        r = h.request("PUT", "/v1/clients/acme/contacts/dana", "admin", DANA)
        self.assertEqual(r.status, 201, r.body)
        again = h.request("PUT", "/v1/clients/acme/contacts/dana", "admin", DANA)
        self.assertEqual(again.status, 200, again.body)
        stored = h.ok("GET", "/v1/clients/acme/contacts/dana", "audit")
        cases = [
            ("bad timezone", dict(DANA, timezone="Mars/Olympus_Mons"), "invalid_timezone",
             "timezone"),
            ("bad phone", dict(DANA, phone="555-1234"), "invalid_phone", "phone"),
            ("phone without plus", dict(DANA, phone="15551234567"), "invalid_phone", "phone"),
            ("bad email", dict(DANA, email="not-an-address"), "invalid_email", "email"),
            ("sms without phone", {k: v for k, v in DANA.items() if k != "phone"},
             "missing_address", "channels[1]"),
            ("email without address", dict({k: v for k, v in DANA.items() if k != "email"},
                                           channels=["sms", "email"]),
             "missing_address", "channels[1]"),
            ("unknown channel", dict(DANA, channels=["email", "pigeon"]), "invalid_channel",
             "channels[1]"),
            ("bad quiet hours", dict(DANA, quiet_hours={"start": "25:00", "end": "07:00"}),
             "invalid_quiet_hours", "quiet_hours.start"),
            ("missing name", {k: v for k, v in DANA.items() if k != "name"}, "missing_field",
             "name"),
            ("unknown field", dict(DANA, pager="123"), "unknown_field", "pager"),
        ]
        for label, body, code, field in cases:
            with self.subTest(label):
                r = h.request("PUT", "/v1/clients/acme/contacts/dana", "admin", body)
                self.assert_error(r, 422, code, field)
        # No rejected write changed the stored contact.
        self.assertEqual(h.ok("GET", "/v1/clients/acme/contacts/dana", "audit"), stored)
        r = h.request("PUT", "/v1/clients/globex/contacts/dana", "admin", DANA)
        self.assertEqual(r.status, 404, r.body)

    def test_plan_rejection_leaves_plan_unchanged(self):
        h = self.h
        h.ok("PUT", "/v1/clients/acme/contacts/dana", "admin", DANA)
        h.ok("PUT", "/v1/clients/acme/endpoints/soc-slack", "admin",
             {"type": "slack", "url": f"{self.hooks.base}/slack/T1/B1/abc"})
        good = {"rules": [{"id": "execs", "phases": ["containment"], "min_severity": "high",
                           "roles": ["executive"], "channels": ["email"], "delay": "0s"}]}
        put = h.ok("PUT", "/v1/clients/acme/plan", "admin", good)
        self.assertIsInstance(put["version"], int)
        self.assertIsInstance(put["warnings"], list)
        before = h.ok("GET", "/v1/clients/acme/plan", "audit")
        self.assertEqual([r["id"] for r in before["rules"]], ["execs"])
        rule = {"id": "rooms", "phases": ["containment"], "endpoints": ["soc-slack"]}
        cases = [
            ("bad phase", [rule, dict(rule, id="r2", phases=["containment", "panic"])],
             "rules[1].phases[1]"),
            ("bad severity", [dict(rule, min_severity="apocalyptic")], "rules[0].min_severity"),
            ("unknown endpoint", [dict(rule, endpoints=["nowhere"])], "rules[0].endpoints[0]"),
            ("unknown field", [dict(rule, colour="red")], "rules[0].colour"),
            ("bad delay", [dict(rule, delay="soon")], "rules[0].delay"),
        ]
        for label, rules, field in cases:
            with self.subTest(label):
                r = h.request("PUT", "/v1/clients/acme/plan", "admin", {"rules": rules})
                self.assertEqual(r.status, 422, r.body)
                self.assertEqual(r.body["error"]["field"], field, r.body)
                self.assertEqual(h.ok("GET", "/v1/clients/acme/plan", "audit"), before)
        r = h.request("PUT", "/v1/clients/acme/plan", "admin", raw=b"{rules:")
        self.assertEqual(r.status, 400, r.body)
        self.assertEqual(h.ok("GET", "/v1/clients/acme/plan", "audit"), before)

    def test_secrets_are_never_shown(self):
        h = self.h
        given = whsec()
        slack_url = f"{self.hooks.base}/services/T0SECRET/B0SECRET/slackpathsecret"
        hook_url = f"{self.hooks.base}/hooks/siem-path-secret"
        r = h.request("PUT", "/v1/clients/acme/endpoints/soc-slack", "admin",
                      {"type": "slack", "url": slack_url})
        self.assertEqual(r.status, 201, r.body)
        self.assertNotIn("slackpathsecret", json.dumps(r.body))
        r = h.request("PUT", "/v1/clients/acme/endpoints/siem", "admin",
                      {"type": "webhook", "url": hook_url, "secret": given})
        self.assertEqual(r.status, 201, r.body)
        self.assertNotIn(given, json.dumps(r.body))
        # Without a secret one is generated and shown exactly once, in this answer.
        r = h.request("PUT", "/v1/clients/acme/endpoints/gen", "admin",
                      {"type": "webhook", "url": f"{self.hooks.base}/hooks/gen"})
        self.assertEqual(r.status, 201, r.body)
        generated = r.body["secret"]
        self.assertRegex(generated, r"^whsec_[A-Za-z0-9+/]+=*$")
        self.assertNotEqual(generated, "whsec_[redacted]")
        # A bad secret is refused, and not echoed.
        r = h.request("PUT", "/v1/clients/acme/endpoints/bad", "admin",
                      {"type": "webhook", "url": hook_url, "secret": "whsec_short"})
        self.assert_error(r, 422, "invalid_secret", "secret")
        r = h.request("PUT", "/v1/clients/acme/endpoints/bad", "admin",
                      {"type": "slack", "url": "ftp://example.com/x"})
        self.assert_error(r, 422, "invalid_url", "url")

        one = h.ok("GET", "/v1/clients/acme/endpoints/soc-slack", "admin")
        self.assertEqual(one["url"], f"{self.hooks.base}/[redacted]")
        siem = h.ok("GET", "/v1/clients/acme/endpoints/siem", "audit")
        self.assertEqual(siem["url"], f"{self.hooks.base}/[redacted]")
        self.assertEqual(siem["secrets"], ["whsec_[redacted]"])
        self.assertNotIn("secret", siem)
        listing = h.ok("GET", "/v1/clients/acme/endpoints", "audit")
        self.assertEqual(len(listing["items"]), 3)

        audit = h.ok("GET", "/v1/audit?limit=500", "audit")
        self.assertTrue(any(a["kind"] == "endpoint.put" for a in audit["items"]))
        bodies = {
            "GET endpoints": json.dumps(listing),
            "GET endpoint": json.dumps(one) + json.dumps(siem),
            "GET gen": json.dumps(h.ok("GET", "/v1/clients/acme/endpoints/gen", "admin")),
            "GET /v1/audit": json.dumps(audit),
        }
        # The daemon's log so far (it stops at cleanup; everything above is already logged).
        bodies["daemon log"] = self.herald.log_text()
        for where, text in bodies.items():
            for secret in (given, generated, given[6:], generated[6:], "slackpathsecret",
                           "siem-path-secret"):
                with self.subTest(where=where, secret=secret[:12]):
                    self.assertNotIn(secret, text)

    def test_plan_preview(self):
        h = self.h
        h.ok("PUT", "/v1/clients/acme/contacts/dana", "admin", DANA)
        h.ok("PUT", "/v1/clients/acme/contacts/lee", "admin",
             {"name": "Lee Park", "roles": ["legal"], "email": "lee@acme.example",
              "channels": ["email"]})
        h.ok("PUT", "/v1/clients/acme/endpoints/soc-slack", "admin",
             {"type": "slack", "url": f"{self.hooks.base}/slack/T1/B1/abc"})
        h.ok("PUT", "/v1/clients/acme/plan", "admin", {"rules": [
            {"id": "execs", "phases": ["containment"], "min_severity": "high",
             "roles": ["executive", "legal"], "channels": ["email", "sms"], "delay": "0s",
             "quiet_hours": "ignore"},
            {"id": "rooms", "phases": ["containment", "recovery"], "min_severity": "low",
             "endpoints": ["soc-slack"], "delay": "5m"},
        ]})
        preview = h.ok("POST", "/v1/clients/acme/plan/preview", "audit",
                       {"phase": "containment", "severity": "critical",
                        "at": "2026-12-04T10:00:00Z"})
        got = sorted((m["rule"], m.get("contact") or m.get("endpoint"), m["channel"],
                      m["send_at"]) for m in preview["messages"])
        self.assertEqual(got, [
            ("execs", "dana", "email", "2026-12-04T10:00:00Z"),
            ("execs", "dana", "sms", "2026-12-04T10:00:00Z"),
            ("execs", "lee", "email", "2026-12-04T10:00:00Z"),
            ("rooms", "soc-slack", "chat", "2026-12-04T10:05:00Z"),
        ])
        dana_sms = [m for m in preview["messages"]
                    if m.get("contact") == "dana" and m["channel"] == "sms"][0]
        self.assertEqual(dana_sms["address"], "+15551234567")
        low = h.ok("POST", "/v1/clients/acme/plan/preview", "admin",
                   {"phase": "recovery", "severity": "low"})
        self.assertEqual([(m["rule"], m["channel"]) for m in low["messages"]],
                         [("rooms", "chat")])
        r = h.request("POST", "/v1/clients/acme/plan/preview", "admin",
                      {"phase": "panic", "severity": "low"})
        self.assert_error(r, 422, "invalid_phase", "phase")
        # Nothing was sent.
        self.assertEqual(h.deliveries(), [])
        self.assertEqual(self.hooks.requests(), [])


if __name__ == "__main__":
    unittest.main()
