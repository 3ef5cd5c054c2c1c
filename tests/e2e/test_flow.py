"""The full tour: configure a client, send events, check what every receiver got."""

import base64
import datetime
import json
import re
import unittest
import urllib.parse

from harness import (MAIL_FROM, SMS_AUTH, SMS_FROM, SMS_SID, TOKENS, HeraldTestCase, event,
                     verify_webhook_signature, wait_for, whsec)

SMS_PATH = f"/2010-04-01/Accounts/{SMS_SID}/Messages.json"
TITLE = "Ransomware on FS01"
SUMMARY = "FS01 isolated from the network"


class FlowTest(HeraldTestCase):

    def setUp(self):
        self.h = self.start_stack()
        self.secret = whsec()
        plan = self.setup_acme(self.h, webhook_secret=self.secret)
        self.assertIn("version", plan)
        self.assertIn("warnings", plan)

    def post(self, body):
        r = self.h.request("POST", "/v1/events", "ingest", body)
        self.assertEqual(r.status, 202, r.body)
        return r.body

    def test_full_tour(self):
        h = self.h
        first = self.post(event("evt-1"))
        # dana: email + sms, lee: email, slack, webhook.
        self.assertEqual(first, {"event_id": "evt-1", "incident": "INC-42", "messages": 5,
                                 "duplicate": False})
        items = h.wait_deliveries(5, client="acme")
        by_key = {(d["contact"] or d["endpoint"], d["channel"]): d for d in items}
        self.assertEqual(set(by_key), {("dana", "email"), ("dana", "sms"), ("lee", "email"),
                                       ("soc-slack", "chat"), ("siem", "webhook")})
        for d in items:
            self.assertEqual((d["client"], d["incident"], d["event_id"], d["phase"]),
                             ("acme", "INC-42", "evt-1", "containment"))
            self.assertEqual(d["attempts"], 1)
            self.assertIsNotNone(d["delivered_at"])

        # ---- email
        mails = wait_for(lambda: len(self.mail.emails()) == 2 and self.mail.emails(),
                         message="2 emails")
        by_rcpt = {tuple(r["rcpt_tos"]): msg for r, msg in mails}
        self.assertEqual(set(by_rcpt), {("dana@acme.example",), ("lee@acme.example",)})
        for r, _ in mails:
            self.assertEqual(r["mail_from"], "herald@msp.example")
        threads = set()
        for (rcpt,), msg in by_rcpt.items():
            contact = rcpt.split("@")[0]
            delivery = by_key[(contact, "email")]
            self.assertEqual(msg["Message-ID"], f"<{delivery['id']}@msp.example>")
            self.assertIn(rcpt, msg["To"])
            self.assertEqual(str(msg["From"]), MAIL_FROM)
            self.assertIsNotNone(msg["Date"])
            self.assertIsNotNone(msg["Subject"])
            self.assertIn(TITLE, str(msg["Subject"]))
            self.assertEqual(msg["In-Reply-To"], msg["References"])
            self.assertRegex(msg["References"], r"^<[^<>@\s]+@msp\.example>$")
            threads.add(msg["References"])
            self.assertEqual(msg.get_content_type(), "multipart/alternative")
            parts = list(msg.iter_parts())
            self.assertEqual([p.get_content_type() for p in parts], ["text/plain", "text/html"])
            for p in parts:
                self.assertEqual(p["Content-Transfer-Encoding"], "quoted-printable")
                content = p.get_content()
                self.assertIn(TITLE, content)
                self.assertIn(SUMMARY, content)
                self.assertIn("INC-42", content)
        self.assertEqual(len(threads), 1, "both emails of one incident share a thread")
        thread = threads.pop()

        # ---- sms
        sms = self.hooks.requests(SMS_PATH)
        self.assertEqual(len(sms), 1)
        req = sms[0]
        self.assertEqual(req["method"], "POST")
        auth = req["headers"]["authorization"]
        self.assertTrue(auth.startswith("Basic "), auth)
        self.assertEqual(base64.b64decode(auth[6:]).decode(), f"{SMS_SID}:{SMS_AUTH}")
        self.assertIn("application/x-www-form-urlencoded", req["headers"]["content-type"])
        form = urllib.parse.parse_qs(req["body"], strict_parsing=True)
        self.assertEqual(form["To"], ["+15551234567"])
        self.assertEqual(form["From"], [SMS_FROM])
        self.assertIn(TITLE, form["Body"][0])
        self.assertIn(SUMMARY, form["Body"][0])

        # ---- slack
        slack = self.hooks.requests("/slack/T000/B000/XXXXSECRET")
        self.assertEqual(len(slack), 1)
        payload = json.loads(slack[0]["body"])
        self.assertIn(TITLE, payload["text"])
        self.assertIsInstance(payload["blocks"], list)
        self.assertTrue(payload["blocks"])
        self.assertIn(SUMMARY, json.dumps(payload["blocks"]))

        # ---- signed webhook
        hooks = self.hooks.requests("/hooks/siem")
        self.assertEqual(len(hooks), 1)
        hk = hooks[0]
        self.assertEqual(hk["headers"]["webhook-id"], by_key[("siem", "webhook")]["id"])
        self.assertRegex(hk["headers"]["webhook-timestamp"], r"^\d{10}$")
        self.assertTrue(hk["headers"]["webhook-signature"].startswith("v1,"))
        self.assertTrue(verify_webhook_signature(self.secret, hk["headers"], hk["body"]),
                        "webhook-signature verifies with the endpoint secret")
        self.assertFalse(verify_webhook_signature(whsec(), hk["headers"], hk["body"]))
        body = json.loads(hk["body"])
        self.assertEqual(body["type"], "incident.phase_changed")
        self.assertEqual(body["client"], "acme")
        self.assertEqual(body["incident"], {"id": "INC-42", "title": TITLE,
                                            "severity": "critical"})
        self.assertEqual(body["phase"], "containment")
        self.assertIsNone(body["previous_phase"])
        self.assertEqual(body["occurred_at"], "2026-12-04T10:00:00Z")
        self.assertEqual(body["summary"], SUMMARY)
        self.assertEqual(body["details"], {"host": "FS01"})
        self.assertIs(body["drill"], False)

        # ---- a second event of the same incident threads with the first
        second = self.post(event("evt-2", phase="eradication",
                                 occurred_at="2026-12-04T11:00:00Z",
                                 summary="Malware removed from FS01"))
        self.assertEqual(second["messages"], 5)
        h.wait_deliveries(10, client="acme")
        mails = wait_for(lambda: len(self.mail.emails()) == 4 and self.mail.emails(),
                         message="4 emails")
        self.assertEqual({m["References"] for _, m in mails}, {thread})
        self.assertEqual({m["In-Reply-To"] for _, m in mails}, {thread})
        self.assertEqual(len({m["Message-ID"] for _, m in mails}), 4)
        hooks = self.hooks.requests("/hooks/siem")
        self.assertEqual(len(hooks), 2)
        body2 = json.loads(hooks[1]["body"])
        self.assertEqual((body2["phase"], body2["previous_phase"]), ("eradication", "containment"))
        self.assertTrue(verify_webhook_signature(self.secret, hooks[1]["headers"],
                                                 hooks[1]["body"]))

        # ---- another incident gets another thread
        self.post(event("evt-3", incident="INC-43", title="Phishing wave"))
        h.wait_deliveries(5, client="acme", incident="INC-43")
        mails = wait_for(lambda: len(self.mail.emails()) == 6 and self.mail.emails(),
                         message="6 emails")
        other = {m["References"] for _, m in mails if "Phishing wave" in str(m["Subject"])}
        self.assertEqual(len(other), 1)
        self.assertNotEqual(other.pop(), thread)

        # ---- delivery log filters
        self.assertEqual(len(h.deliveries(client="acme")), 15)
        self.assertEqual(len(h.deliveries(client="acme", incident="INC-42")), 10)
        self.assertEqual(len(h.deliveries(client="acme", channel="email")), 6)
        self.assertEqual(len(h.deliveries(channel="sms")), 3)
        self.assertEqual(len(h.deliveries(status="delivered")), 15)
        self.assertEqual(h.deliveries(status="failed"), [])
        self.assertEqual(h.deliveries(client="nobody"), [])
        self.assertEqual(len(h.deliveries(client="acme", since="2000-01-01T00:00:00Z")), 15)
        self.assertEqual(h.deliveries(client="acme", since="2100-01-01T00:00:00Z"), [])
        self.assertEqual(h.deliveries(client="acme", until="2000-01-01T00:00:00Z"), [])
        for query, field in (("status=lost", "status"), ("limit=0", "limit"),
                             ("cursor=abc", "cursor"), ("since=yesterday", "since")):
            r = h.request("GET", "/v1/deliveries?" + query, "audit")
            self.assertEqual((r.status, r.body["error"]["field"]), (400, field), r.body)
        bad = h.request("GET", "/v1/deliveries?status=lost", "audit")
        self.assertEqual(bad.status, 400, bad.body)
        self.assertEqual(bad.body["error"]["field"], "status")

        # ---- cursor paging: limit=1 walks every item exactly once
        seen, cursor, pages = [], None, 0
        while True:
            q = "/v1/deliveries?client=acme&limit=1" + (f"&cursor={cursor}" if cursor else "")
            page = h.ok("GET", q, "audit")
            pages += 1
            self.assertLessEqual(len(page["items"]), 1)
            seen += [d["id"] for d in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
            self.assertIsInstance(cursor, str)
            self.assertLess(pages, 100)
        self.assertEqual(len(seen), 15)
        self.assertEqual(len(set(seen)), 15)
        self.assertEqual(set(seen), {d["id"] for d in h.deliveries(client="acme")})

        # ---- one delivery in detail
        siem = by_key[("siem", "webhook")]
        detail = h.ok("GET", f"/v1/deliveries/{siem['id']}", "audit")
        self.assertEqual(detail["id"], siem["id"])
        self.assertEqual(detail["status"], "delivered")
        self.assertEqual(len(detail["attempts_log"]), 1)
        attempt = detail["attempts_log"][0]
        self.assertEqual(attempt["number"], 1)
        self.assertEqual(attempt["outcome"], "delivered")
        self.assertEqual(attempt["status_code"], 200)
        self.assertIsNone(attempt["error"])
        self.assertGreaterEqual(attempt["duration_ms"], 0)
        self.assertRegex(attempt["started_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
        self.assertIn("content", detail)
        mail_detail = h.ok("GET", f"/v1/deliveries/{by_key[('dana', 'email')]['id']}", "audit")
        self.assertEqual(mail_detail["attempts_log"][0]["outcome"], "delivered")
        self.assertEqual(mail_detail["attempts_log"][0]["status_code"], 250)
        self.assertEqual(mail_detail["content"]["address"], "dana@acme.example")
        self.assertIn(TITLE, mail_detail["content"]["subject"])
        missing = h.request("GET", "/v1/deliveries/no-such-id", "audit")
        self.assertEqual(missing.status, 404)

        # ---- the incident's timeline
        inc = h.ok("GET", "/v1/incidents/INC-42?client=acme", "audit")
        self.assertEqual((inc["id"], inc["client"], inc["title"]), ("INC-42", "acme", TITLE))
        self.assertEqual(inc["phase"], "eradication")
        self.assertEqual(inc["previous_phase"], "containment")
        events = [e for e in inc["timeline"] if e["type"] == "event"]
        self.assertEqual([e["event_id"] for e in events], ["evt-1", "evt-2"])
        self.assertEqual([e["phase"] for e in events], ["containment", "eradication"])
        self.assertEqual(len(inc["messages"]), 10)
        self.assertEqual(h.request("GET", "/v1/incidents/INC-42", "audit").status, 400)
        self.assertEqual(h.request("GET", "/v1/incidents/INC-99?client=acme", "audit").status,
                         404)

        # ---- audit chain and metrics
        verify = h.ok("GET", "/v1/audit/verify", "audit")
        self.assertIs(verify["ok"], True)
        self.assertGreater(verify["records"], 0)
        audit = h.ok("GET", "/v1/audit?limit=500", "audit")
        kinds = {a["kind"] for a in audit["items"]}
        self.assertTrue({"plan.put", "endpoint.put"} <= kinds, kinds)
        metrics = h.request("GET", "/metrics")
        self.assertEqual(metrics.status, 200)
        self.assertIn("text/plain", metrics.headers["Content-Type"])
        text = metrics.body
        self.assertRegex(text, r'(?m)^herald_messages\{channel="email",status="delivered"\} 6$')
        self.assertRegex(text, r"(?m)^herald_attempts_total(\{[^}]*\})? \d+")
        self.assertRegex(text, r"(?m)^# TYPE herald_messages gauge$")
        self.assertRegex(text, r'(?m)^herald_attempt_duration_seconds_count\{channel="email"\} 6$')
        self.assertRegex(text, r'(?m)^herald_attempt_duration_seconds_bucket\{channel="webhook",'
                               r'le="\+Inf"\} 3$')
        self.assertRegex(text, r"(?m)^herald_queue_depth 0$")
        self.assertRegex(text, r'(?m)^herald_events_total\{outcome="accepted"\} 3$')

        # ---- no credential ever reaches the daemon's log
        log = h.log_text()
        for secret in [SMS_AUTH, self.secret, self.secret[6:], "XXXXSECRET",
                       *TOKENS.values()]:
            self.assertNotIn(secret, log)

    def test_drill_is_labelled_everywhere(self):
        self.post(event("evt-drill", drill=True))
        self.h.wait_deliveries(5, client="acme")
        mails = wait_for(lambda: len(self.mail.emails()) == 2 and self.mail.emails(),
                         message="2 emails")
        for _, msg in mails:
            self.assertIn("DRILL", str(msg["Subject"]))
            for part in msg.iter_parts():
                self.assertIn("DRILL", part.get_content())
        [sms] = self.hooks.requests(SMS_PATH)
        self.assertIn("DRILL", urllib.parse.parse_qs(sms["body"])["Body"][0])
        [slack] = self.hooks.requests("/slack/T000/B000/XXXXSECRET")
        self.assertIn("DRILL", json.loads(slack["body"])["text"])
        [hook] = self.hooks.requests("/hooks/siem")
        self.assertIs(json.loads(hook["body"])["drill"], True)
        inc = self.h.ok("GET", "/v1/incidents/INC-42?client=acme", "audit")
        self.assertIs(inc["drill"], True)

    def test_unicode_and_escaping(self):
        """Non-ASCII survives every channel; markup in values is escaped where it lands."""
        title = "Ransomware in Zürich <script>alert(1)</script> & “more”"
        summary = "Dateiserver FS01 isoliert — Überwachung läuft"
        self.post(event("evt-u", title=title, summary=summary))
        self.h.wait_deliveries(5, client="acme")
        mails = wait_for(lambda: len(self.mail.emails()) == 2 and self.mail.emails(),
                         message="2 emails")
        for _, msg in mails:
            self.assertIn(title, str(msg["Subject"]))
            self.assertEqual(list(msg["Subject"].defects), [])
            text, html = [p.get_content() for p in msg.iter_parts()]
            self.assertIn(title, text)
            self.assertIn(summary, text)
            self.assertNotIn("<script>", html)
            self.assertIn("&lt;script&gt;", html)
            self.assertIn("Zürich", html)
            self.assertIn(summary, html)
        for r, _ in mails:
            # The raw message is 7-bit clean: headers encoded words, bodies quoted-printable.
            self.assertTrue(all(ord(c) < 128 for c in r["data"]), "raw email is ASCII")
        [sms] = self.hooks.requests(SMS_PATH)
        self.assertIn(title, urllib.parse.parse_qs(sms["body"])["Body"][0])
        [slack] = self.hooks.requests("/slack/T000/B000/XXXXSECRET")
        text = json.loads(slack["body"])["text"]
        self.assertNotIn("<script>", text)
        self.assertIn("&lt;script&gt;", text)
        self.assertIn("Zürich", text)
        [hook] = self.hooks.requests("/hooks/siem")
        body = json.loads(hook["body"])
        self.assertEqual(body["incident"]["title"], title)
        self.assertEqual(body["summary"], summary)
        self.assertTrue(verify_webhook_signature(self.secret, hook["headers"], hook["body"]))

    def test_audit_paging(self):
        h = self.h
        self.post(event("evt-1"))
        h.wait_deliveries(5, client="acme")
        total = h.ok("GET", "/v1/audit/verify", "audit")["records"]
        seqs, cursor = [], None
        for _ in range(total + 2):
            page = h.ok("GET", "/v1/audit?limit=1" + (f"&cursor={cursor}" if cursor else ""),
                        "audit")
            seqs += [a["seq"] for a in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        self.assertEqual(seqs, list(range(1, total + 1)))
        records = h.ok("GET", "/v1/audit?limit=500", "audit")["items"]
        client = [a for a in records if a["kind"] == "client.put"]
        self.assertEqual(len(client), 1)
        self.assertEqual(client[0]["actor"], "admin")
        self.assertIsNone(client[0]["data"]["before"])
        self.assertEqual(client[0]["data"]["after"]["name"], "Acme Corp")
        plan = [a for a in h.ok("GET", "/v1/audit?kind=plan.put", "audit")["items"]]
        self.assertEqual(len(plan), 1)

    def test_quiet_hours_defer_people(self):
        """CONTRACT: quiet_hours `respect` (the default) defers a message to the end of the
        contact's quiet hours."""
        h = self.h
        now = datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0)
        start = (now - datetime.timedelta(hours=1)).strftime("%H:%M")
        end_at = now + datetime.timedelta(hours=2)
        h.ok("PUT", "/v1/clients/acme/contacts/dana", "admin",
             {"name": "Dana Lee", "roles": ["executive"], "email": "dana@acme.example",
              "phone": "+15551234567", "timezone": "UTC",
              "quiet_hours": {"start": start, "end": end_at.strftime("%H:%M")},
              "channels": ["email", "sms"]})
        h.ok("PUT", "/v1/clients/acme/plan", "admin", {"rules": [
            {"id": "people", "phases": ["containment"], "roles": ["executive", "legal"],
             "channels": ["email", "sms"]}]})  # quiet_hours: respect, by default
        self.post(event("evt-q", occurred_at=now.strftime("%Y-%m-%dT%H:%M:%SZ")))
        wait_for(lambda: len(self.mail.records()) >= 1, message="lee's email")
        # The mail arrives before herald records the outcome: wait for the record too.

        def recorded():
            items = {(d["contact"], d["channel"]): d for d in h.deliveries(client="acme")}
            return items if items[("lee", "email")]["status"] != "sending" else None
        items = wait_for(recorded, message="lee's delivery to be recorded")
        self.assertEqual(items[("lee", "email")]["status"], "delivered")
        for key in (("dana", "email"), ("dana", "sms")):
            self.assertEqual(items[key]["status"], "scheduled", items[key])
            send_at = datetime.datetime.fromisoformat(items[key]["send_at"].replace("Z", "+00:00"))
            self.assertEqual(send_at, end_at)
        self.assertEqual([r["rcpt_tos"] for r in self.mail.records()], [["lee@acme.example"]])


if __name__ == "__main__":
    unittest.main()
