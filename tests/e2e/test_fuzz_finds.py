"""What fuzzing found (fuzz/README.md), against the real daemon: each input once killed it, hung
it, or answered 500. Now each is refused with the right status, and the daemon stays up."""

import json
import unittest

from harness import HeraldTestCase, event, wait_for


class FuzzFindsTest(HeraldTestCase):

    def setUp(self):
        self.h = self.start_stack()
        self.setup_acme(self.h, slack=False, webhook=False)

    def assert_alive(self):
        self.assertEqual(self.h.request("GET", "/healthz").status, 200)
        self.assertTrue(self.h.running)

    def test_json_nested_too_deep_is_400(self):
        depth = 100_000  # 200 KB: well under the body limit; printing it overflowed the stack
        deep = event("evt-deep")
        del deep["details"]
        body = json.dumps(deep)[:-1] + ', "details": {"a": ' + "[" * depth + "]" * depth + "}}"
        r = self.h.request("POST", "/v1/events", "ingest", raw=body.encode())
        self.assertEqual(r.status, 400, r.body)
        self.assertEqual(r.body["error"]["code"], "malformed_json")
        self.assertIn("64 levels", r.body["error"]["message"])
        # 64 levels are fine.
        ok = dict(event("evt-64"), details={"a": json.loads("[" * 62 + "]" * 62)})
        self.assertEqual(self.h.request("POST", "/v1/events", "ingest", ok).status, 202)
        self.assert_alive()

    def test_number_beyond_a_double_is_400(self):
        for path, token in (("/v1/events", "ingest"), ("/v1/clients/acme/plan", "admin"),
                            ("/v1/sources/alertmanager?client=acme", "ingest")):
            method = "PUT" if path.endswith("/plan") else "POST"
            r = self.h.request(method, path, token, raw=b'{"rules": [1e999]}')
            self.assertEqual(r.status, 400, (path, r.body))
            self.assertEqual(r.body["error"]["code"], "malformed_json")
            self.assertIn("number overflow", r.body["error"]["message"])
        self.assert_alive()

    def test_partial_including_itself_behind_other_delimiters_is_refused(self):
        for body in ("{{=<% %>=}}<%> footer%>", "{{ > footer }}"):
            r = self.h.request("PUT", "/v1/templates/partial.footer", "admin",
                               {"client": "acme", "body": body})
            self.assertEqual(r.status, 422, (body, r.body))
            self.assertIn("includes itself", r.body["error"]["message"])
        # Nothing was stored: messages still render and go out.
        self.h.ok("POST", "/v1/events", "ingest", event("evt-after"), expect=202)

        def all_delivered():
            items = self.h.deliveries(client="acme")
            return items if items and all(d["status"] == "delivered" for d in items) else None
        wait_for(all_delivered, message="every message delivered")
        self.assert_alive()

    def test_render_preview_limits(self):
        nested = "{{#a}}" * 25_000 + "{{/a}}" * 25_000  # needed over 2 GB in the engine
        r = self.h.request("POST", "/v1/templates/render", "admin", {"template": nested})
        self.assertEqual(r.status, 422, r.body)
        self.assertEqual(r.body["error"]["field"], "template")
        deep = "{{#a}}" * 33 + "{{/a}}" * 33
        r = self.h.request("POST", "/v1/templates/render", "admin", {"template": deep})
        self.assertEqual(r.status, 422, r.body)
        self.assertIn("nest more than 32", r.body["error"]["message"])
        r = self.h.request("POST", "/v1/templates/render", "admin",
                           {"template": "{{#drill}}DRILL{{/drill}}", "drill": "yes"})
        self.assertEqual((r.status, r.body["error"]["field"]), (422, "drill"), r.body)
        r = self.h.request("POST", "/v1/templates/render", "admin",
                           {"template": "{{#drill}}DRILL{{/drill}}", "drill": True})
        self.assertEqual((r.status, r.body["rendered"].strip()), (200, "DRILL"), r.body)
        self.assert_alive()

    def test_alertmanager_ids_follow_the_event_rules(self):
        alert = {"status": "firing", "labels": {"incident": "I" * 201},
                 "startsAt": "2026-12-04T10:00:00Z"}
        r = self.h.request("POST", "/v1/sources/alertmanager?client=acme", "ingest",
                           {"version": "4", "alerts": [alert]})
        self.assertEqual(r.status, 422, r.body)
        self.assertEqual(r.body["error"]["field"], "alerts[0].labels.incident")
        self.assert_alive()


if __name__ == "__main__":
    unittest.main()
