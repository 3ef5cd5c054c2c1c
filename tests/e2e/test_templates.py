"""Templates through the API: overrides used by real messages, compile errors, warnings,
versions, previews, locale variants, deletion falling back to the shipped default."""

import os
import subprocess
import unittest
import urllib.parse

from harness import HERALD_BIN, HeraldTestCase, event, wait_for

SUBJECT = "containment.email.subject"


class TemplatesTest(HeraldTestCase):

    def setUp(self):
        self.h = self.start_stack()
        self.setup_acme(self.h, slack=True, webhook=False)

    def put(self, name, body, client="acme", token="admin"):
        return self.h.request("PUT", f"/v1/templates/{name}", token,
                              {"client": client, "body": body})

    def subjects(self, count):
        mails = wait_for(lambda: len(self.mail.emails()) >= count and self.mail.emails(),
                         message=f"{count} emails")
        return sorted(str(msg["Subject"]) for _, msg in mails)

    def test_client_override_is_used_then_delete_falls_back(self):
        h = self.h
        r = self.put(SUBJECT, "ACME ALERT {{incident.id}}: {{incident.title}}")
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual((r.body["name"], r.body["client"], r.body["version"]),
                         (SUBJECT, "acme", 1))
        self.assertEqual(r.body["warnings"], [])

        h.ok("POST", "/v1/events", "ingest", event("evt-1"), expect=202)
        items = h.wait_deliveries(4, client="acme")
        self.assertEqual(self.subjects(2), ["ACME ALERT INC-42: Ransomware on FS01"] * 2)
        email = next(d for d in items if d["channel"] == "email")
        detail = h.ok("GET", f"/v1/deliveries/{email['id']}", "audit")
        self.assertEqual(detail["templates"],
                         [f"{SUBJECT}@acme:v1", "containment.email.text@shipped",
                          "containment.email.html@shipped"])
        sms = next(d for d in items if d["channel"] == "sms")
        detail = h.ok("GET", f"/v1/deliveries/{sms['id']}", "audit")
        self.assertEqual(detail["templates"], ["containment.sms.text@shipped"])
        self.assertIn(detail["sms_segments"], (1, 2, 3))

        # The change is audited with before and after.
        audit = h.ok("GET", "/v1/audit?kind=template.put", "audit")["items"]
        self.assertEqual(len(audit), 1)
        self.assertEqual(audit[0]["data"]["before"], None)
        self.assertEqual(audit[0]["data"]["after"]["body"],
                         "ACME ALERT {{incident.id}}: {{incident.title}}")

        # DELETE: the shipped subject serves again.
        self.assertEqual(h.request("DELETE", f"/v1/templates/{SUBJECT}?client=acme",
                                   "admin").status, 204)
        self.assertEqual(h.request("DELETE", f"/v1/templates/{SUBJECT}?client=acme",
                                   "admin").status, 404)
        got = h.ok("GET", f"/v1/templates/{SUBJECT}?client=acme", "audit")
        self.assertEqual(got["source"], "shipped")
        h.ok("POST", "/v1/events", "ingest", event("evt-2", incident="INC-43"), expect=202)
        h.wait_deliveries(4, client="acme", incident="INC-43")
        wait_for(lambda: len(self.mail.emails()) >= 4, message="4 emails")
        latest = [str(m["Subject"]) for _, m in self.mail.emails()[2:]]
        self.assertEqual(len(latest), 2)
        for s in latest:
            self.assertIn("Containment: limiting the impact", s)
        delete_audit = h.ok("GET", "/v1/audit?kind=template.delete", "audit")["items"]
        self.assertEqual(len(delete_audit), 1)
        self.assertEqual(delete_audit[0]["data"]["after"], None)

    def test_broken_template_is_422_with_line_and_column(self):
        r = self.put("any.sms.text", "line one\n{{#drill}}never closed")
        self.assertEqual(r.status, 422, r.body)
        err = r.body["error"]
        self.assertEqual(err["code"], "invalid_template")
        self.assertEqual(err["field"], "body")
        self.assertIn("line 2", err["message"])
        self.assertEqual(err["line"], 2)
        self.assertIn("column", err)
        # Nothing was stored.
        self.assertEqual(self.h.request("GET", "/v1/templates/any.sms.text?client=acme&version=1",
                                        "admin").status, 404)

    def test_typo_is_a_warning_and_bad_names_clients_and_scopes_are_refused(self):
        r = self.put(SUBJECT, "{{incident.titel}} at {{client.name}}")
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(len(r.body["warnings"]), 1)
        self.assertIn('unknown variable "incident.titel"', r.body["warnings"][0])
        self.assertIn('did you mean "incident.title"', r.body["warnings"][0])
        self.assertEqual(self.put("containment.email.body", "x").status, 400)
        self.assertEqual(self.put(SUBJECT, "x", client="nobody").status, 404)
        self.assertEqual(self.put(SUBJECT, "x", token="audit").status, 403)
        self.assertEqual(self.h.request("PUT", f"/v1/templates/{SUBJECT}", "admin",
                                        {"client": "acme"}).status, 422)
        # A partial that includes itself is refused.
        r = self.put("partial.sig", "-- {{> sig}}")
        self.assertEqual(r.status, 422, r.body)
        self.assertIn("includes itself", r.body["error"]["message"])

    def test_versions_history_and_listing(self):
        h = self.h
        for i in range(1, 4):
            r = self.put(SUBJECT, f"v{i} {{{{incident.id}}}}")
            self.assertEqual(r.status, 201 if i == 1 else 200, r.body)
            self.assertEqual(r.body["version"], i)
        latest = h.ok("GET", f"/v1/templates/{SUBJECT}?client=acme", "audit")
        self.assertEqual((latest["version"], latest["body"], latest["source"]),
                         (3, "v3 {{incident.id}}", "stored"))
        v1 = h.ok("GET", f"/v1/templates/{SUBJECT}?client=acme&version=1", "admin")
        self.assertEqual(v1["body"], "v1 {{incident.id}}")
        history = h.ok("GET", f"/v1/templates/{SUBJECT}/versions?client=acme", "audit")["items"]
        self.assertEqual([v["version"] for v in history], [1, 2, 3])
        self.assertTrue(all(v["actor"] == "admin" for v in history))
        # Every client's template (client null) is separate from acme's.
        r = self.put("any.chat.text", "everyone: {{incident.title}}", client=None)
        self.assertEqual((r.status, r.body["client"]), (201, None))
        listing = h.ok("GET", "/v1/templates", "audit")
        stored = {(t["name"], t["client"]) for t in listing["items"]}
        self.assertEqual(stored, {(SUBJECT, "acme"), ("any.chat.text", None)})
        self.assertIn("containment.email.html", listing["shipped"])
        self.assertIn("partial.footer", listing["shipped"])
        shipped = h.ok("GET", "/v1/templates/recovery.sms.text", "audit")
        self.assertEqual(shipped["source"], "shipped")
        self.assertEqual(h.request("GET", f"/v1/templates/{SUBJECT}?client=acme&version=9",
                                   "audit").status, 404)

    def test_render_endpoint(self):
        h = self.h
        r = h.ok("POST", "/v1/templates/render", "audit",
                 {"template": "<b>{{incident.title}}</b>", "channel": "email.html",
                  "context": {"incident": {"title": "R&D <breach>"}}})
        self.assertEqual(r["rendered"], "<b>R&amp;D &lt;breach&gt;</b>")
        # Without a context: the sample incident.
        r = h.ok("POST", "/v1/templates/render", "admin",
                 {"template": "{{client.name}}: {{incident.titel}}", "channel": "email.subject"})
        self.assertEqual(r["rendered"], "Acme Corp:")
        self.assertEqual(len(r["warnings"]), 1)
        r = h.ok("POST", "/v1/templates/render", "admin",
                 {"template": "{{incident.title}} — {{ack_url}}", "channel": "sms.text"})
        self.assertEqual(r["sms"]["encoding"], "UCS-2")
        self.assertEqual((r["sms"]["units"], r["sms"]["segments"]), (73, 2))
        # The shipped partials, and the client's own.
        self.put("partial.footer", "Acme SOC, 24/7")
        r = h.ok("POST", "/v1/templates/render", "admin",
                 {"template": "-- {{> footer}}", "channel": "chat.text", "client": "acme"})
        self.assertEqual(r["rendered"], "-- Acme SOC, 24/7")
        r = h.ok("POST", "/v1/templates/render", "admin",
                 {"template": "-- {{> footer}}", "channel": "chat.text"})
        self.assertEqual(r["rendered"], "-- Your security incident response team")
        bad = h.request("POST", "/v1/templates/render", "admin",
                        {"template": "{{#a}}", "channel": "email.text"})
        self.assertEqual((bad.status, bad.body["error"]["line"]), (422, 1))
        bad = h.request("POST", "/v1/templates/render", "admin",
                        {"template": "x", "channel": "fax.text"})
        self.assertEqual((bad.status, bad.body["error"]["code"]), (400, "invalid_channel"))
        self.assertEqual(h.request("POST", "/v1/templates/render", "ingest",
                                   {"template": "x"}).status, 403)

    def test_locale_variant_for_a_german_client(self):
        h = self.h
        h.ok("PUT", "/v1/clients/acme", "admin",
             {"name": "Acme Corp", "timezone": "Europe/Berlin", "locale": "de"})
        self.put("any.chat.text.de", "Vorfall {{incident.id}}: {{phase.label}}")
        h.ok("POST", "/v1/events", "ingest", event("evt-1"), expect=202)
        h.wait_deliveries(4, client="acme")
        # The shipped German containment subject, the client's German chat text.
        for s in self.subjects(2):
            self.assertIn("Eindämmung", s)
        slack = wait_for(lambda: self.hooks.requests("/slack/T000/B000/XXXXSECRET"),
                         message="slack message")
        self.assertIn("Vorfall INC-42: Containment", slack[0]["body"])


class TemplateCliTest(unittest.TestCase):
    """herald template render works offline, without a daemon or a config."""

    def run_cli(self, *args):
        return subprocess.run([HERALD_BIN, "template", "render", *args], capture_output=True,
                              text=True, timeout=30)

    def test_render_file_with_sample_and_given_context(self):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            tmpl = os.path.join(d, "t.mustache")
            with open(tmpl, "w") as f:
                f.write("<p>{{incident.title}}</p>{{incident.titel}}")
            r = self.run_cli("--channel", "email.html", tmpl)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, "<p>Ransomware on FS01</p>\n")
            self.assertIn('unknown variable "incident.titel"', r.stderr)
            ctx = os.path.join(d, "ctx.json")
            with open(ctx, "w") as f:
                f.write('{"incident": {"title": "A & B"}}')
            r = self.run_cli("--channel", "email.html", "--context", ctx, tmpl)
            self.assertEqual(r.stdout, "<p>A &amp; B</p>\n")
            with open(tmpl, "w") as f:
                f.write("ok\n{{#drill}}")
            r = self.run_cli(tmpl)
            self.assertEqual(r.returncode, 1)
            self.assertIn("line 2", r.stderr)


if __name__ == "__main__":
    unittest.main()
