"""Incident communications reports, effectiveness figures and notification deadlines, checked
against what the real receivers got; deadline reminders with short durations, across a
restart."""

import datetime
import json
import re
import unittest
import urllib.parse

from harness import HeraldTestCase, event, wait_for

SMS_PATH = "/2010-04-01/Accounts/ACtest/Messages.json"
NASTY = "<script>alert('x')</script> & \"Co\""


def now_rfc3339(offset=0.0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


class ReportTest(HeraldTestCase):

    def test_incident_report_tells_failures_fallbacks_and_verifies_audit(self):
        # Every email is refused for good: each person falls back to SMS.
        h = self.start_stack(mail={"reply_code": 550})
        self.setup_acme(h, plan={"rules": [
            {"id": "contain-people", "phases": ["containment", "eradication"],
             "min_severity": "high", "roles": ["executive"], "channels": ["email"],
             "quiet_hours": "ignore"},
            {"id": "contain-rooms", "phases": ["containment", "eradication"],
             "endpoints": ["siem"]}]}, slack=False)
        r = h.request("POST", "/v1/events", "ingest",
                      event("evt-1", title=NASTY, summary="FS01 <b>isolated</b>",
                            occurred_at=now_rfc3339()))
        self.assertEqual(r.status, 202, r.body)

        def settled(count):
            items = h.deliveries(client="acme", incident="INC-42")
            done = [d for d in items if d["status"] in ("delivered", "failed")]
            return items if len(items) == count and len(done) == count else None

        # Each phase: dana's email fails for good, her SMS fallback and the webhook go through.
        wait_for(lambda: settled(3), message="the containment messages to settle")
        r = h.request("POST", "/v1/events", "ingest",
                      event("evt-2", phase="eradication", title=NASTY, occurred_at=now_rfc3339(1)))
        self.assertEqual(r.status, 202, r.body)
        items = wait_for(lambda: settled(6), message="the eradication messages to settle")
        sms = self.hooks.requests(SMS_PATH)
        self.assertEqual(len(sms), 2)

        rep = h.ok("GET", "/v1/incidents/INC-42/report?client=acme", "audit")
        self.assertEqual(rep["incident"]["title"], NASTY)
        self.assertEqual([p["phase"] for p in rep["phases"]], ["containment", "eradication"])
        self.assertEqual([p["event_id"] for p in rep["phases"]], ["evt-1", "evt-2"])
        self.assertEqual(rep["summary"]["messages"], 6)
        self.assertEqual(rep["summary"]["failed"], 2)
        self.assertEqual(rep["summary"]["delivered"], 4)
        by_id = {m["id"]: m for m in rep["messages"]}
        self.assertEqual(set(by_id), {d["id"] for d in items})
        failed = [m for m in rep["messages"] if m["status"] == "failed"]
        self.assertEqual({m["channel"] for m in failed}, {"email"})
        for m in failed:
            self.assertIsNotNone(m["fallback"])
            fb = by_id[m["fallback"]]
            self.assertEqual((fb["channel"], fb["status"], fb["fallback_of"]),
                             ("sms", "delivered", m["id"]))
            self.assertIn("sent again by sms", m["action"])
            self.assertEqual(m["attempt_log"][0]["outcome"], "permanent")
        # The SMS the receiver got are the fallbacks the report names.
        sent_bodies = [urllib.parse.parse_qs(s["body"])["Body"][0] for s in sms]
        fallback_ids = {m["fallback"] for m in failed}
        self.assertEqual(len(fallback_ids), 2)
        for body in sent_bodies:
            self.assertIn(NASTY, body)
        problems = {p["message"]: p for p in rep["problems"]}
        self.assertEqual(set(problems), {m["id"] for m in failed})
        for p in problems.values():
            self.assertTrue(p["errors"][0].startswith("attempt 1: "), p)
        hooks = self.hooks.requests("/hooks/siem")
        delivered_hooks = {m["id"] for m in rep["messages"] if m["channel"] == "webhook"
                           and m["status"] == "delivered"}
        self.assertEqual(delivered_hooks, {hk["headers"]["webhook-id"] for hk in hooks})

        audit = rep["audit"]
        self.assertTrue(audit["ok"], audit)
        self.assertTrue(audit["chain_ok"])
        self.assertEqual(audit["verified"], audit["records"])
        kinds = {a["kind"] for a in audit["items"]}
        self.assertTrue({"event.received", "delivery.attempt", "delivery.fallback"} <= kinds,
                        kinds)

        # HTML: self-contained, printable, everything escaped.
        r = h.request("GET", "/v1/incidents/INC-42/report?client=acme&format=html", "audit")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["Content-Type"].startswith("text/html"))
        page = r.body
        self.assertIsInstance(page, str)
        self.assertNotIn("<script", page.lower())
        self.assertNotIn("<b>isolated", page)
        self.assertIn("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;Co&quot;",
                      page)
        self.assertIn("FS01 &lt;b&gt;isolated&lt;/b&gt;", page)
        self.assertIn("@media print", page)
        self.assertNotRegex(page, r"(src|href)=\"(https?:)?//")
        self.assertIn("sent again by sms", page)
        self.assertIn("Verified.", page)

        self.assertEqual(h.request("GET", "/v1/incidents/INC-42/report", "audit").status, 400)
        self.assertEqual(h.request("GET", "/v1/incidents/NOPE/report?client=acme",
                                   "audit").status, 404)
        self.assertEqual(h.request("GET", "/v1/incidents/INC-42/report?client=acme&format=pdf",
                                   "audit").status, 400)
        self.assertEqual(h.request("GET", "/v1/incidents/INC-42/report?client=acme",
                                   "admin").status, 403)

        # Effectiveness of the period: the two phase changes, email 0 %, SMS and webhook 100 %.
        eff = h.ok("GET", "/v1/reports/effectiveness?client=acme", "audit")
        self.assertEqual(eff["incidents"], 1)
        phases = {p["phase"]: p for p in eff["phases"]}
        self.assertEqual(set(phases), {"containment", "eradication"})
        for p in phases.values():
            self.assertEqual((p["phase_changes"], p["with_delivery"]), (1, 1))
            self.assertGreaterEqual(p["first_delivery_max_ms"], p["first_delivery_p50_ms"])
        channels = {c["channel"]: c for c in eff["channels"]}
        self.assertEqual(channels["email"]["success_rate"], 0.0)
        self.assertEqual(channels["email"]["failed"], 2)
        self.assertEqual(channels["sms"]["success_rate"], 1.0)
        self.assertEqual(channels["webhook"]["attempts_per_message"], 1.0)
        future = h.ok("GET", "/v1/reports/effectiveness?client=acme&since=2099-01-01T00:00:00Z",
                      "audit")
        self.assertEqual((future["incidents"], future["phases"]), (0, []))
        self.assertEqual(h.request("GET", "/v1/reports/effectiveness?since=yesterday",
                                   "audit").status, 400)
        html = h.request("GET", "/v1/reports/effectiveness?format=html", "audit")
        self.assertEqual(html.status, 200)
        self.assertIn("From phase change to first delivery", html.body)
        self.assertNotIn("<script", html.body.lower())

    def obligations(self, h, *items):
        return h.ok("PUT", "/v1/clients/acme/obligations", "admin", {"obligations": list(items)})

    def test_deadline_reminders_overdue_and_met(self):
        h = self.start_stack()
        self.setup_acme(h, slack=False, webhook=False)
        saved = self.obligations(
            h,
            {"id": "authority-6s", "description": "Tell the supervisory authority",
             "starts": "identification", "within": "6s", "remind": ["4s"],
             "roles": ["legal"], "escalate_to": ["executive"], "quiet_hours": "ignore"},
            {"id": "customers-30s", "starts": "identification", "within": "30s",
             "remind": ["25s"], "roles": ["legal"], "quiet_hours": "ignore"},
            {"id": "unused", "starts": "recovery", "within": "1h", "roles": ["nobody"]})
        self.assertEqual(saved["version"], 1)
        self.assertEqual(saved["warnings"],
                         ['obligation "unused": no contact holds the role "nobody"'])
        self.assertEqual(h.ok("GET", "/v1/clients/acme/obligations", "audit")["obligations"],
                         saved["obligations"])

        started = now_rfc3339()
        r = h.request("POST", "/v1/events", "ingest",
                      event("evt-id", phase="identification", occurred_at=started))
        self.assertEqual(r.status, 202, r.body)
        inc = h.ok("GET", "/v1/incidents/INC-42?client=acme", "audit")
        obl = {o["id"]: o for o in inc["obligations"]}
        self.assertEqual(set(obl), {"authority-6s", "customers-30s"})
        self.assertEqual(obl["authority-6s"]["state"], "pending")
        self.assertEqual(parse_time(obl["authority-6s"]["due_at"]) - parse_time(started),
                         datetime.timedelta(seconds=6))

        # Herald stops and starts again before the first reminder: it still comes.
        self.stop_herald(h)
        h = self.start_herald(self.config, "herald2.log")
        self.herald = h

        def mails(to, marker):
            return [m for r, m in self.mail.emails()
                    if r["rcpt_tos"] == [to] and marker in str(m["Subject"])]

        reminder = wait_for(lambda: mails("lee@acme.example", "authority-6s"),
                            message="the reminder to legal")[0]
        self.assertIn("[Deadline]", str(reminder["Subject"]))
        text = next(p for p in reminder.iter_parts()
                    if p.get_content_type() == "text/plain").get_content()
        self.assertIn("Tell the supervisory authority", text)
        self.assertIn(obl["authority-6s"]["due_at"], text)
        self.assertIn("left", text)
        # The deadline passes unmet: legal and the executive are told it is overdue.
        overdue = wait_for(lambda: [m for m in mails("lee@acme.example", "authority-6s") +
                                    mails("dana@acme.example", "authority-6s")
                                    if "[OVERDUE]" in str(m["Subject"])]
                           if len([m for m in mails("lee@acme.example", "authority-6s") +
                                   mails("dana@acme.example", "authority-6s")
                                   if "[OVERDUE]" in str(m["Subject"])]) == 2 else None,
                           message="the overdue notices")
        self.assertEqual(len(overdue), 2)
        sms = [s for s in self.hooks.requests(SMS_PATH) if "authority-6s" in s["body"]]
        self.assertTrue(any("OVERDUE" in urllib.parse.parse_qs(s["body"])["Body"][0]
                            for s in sms), sms)

        def state(oid):
            inc = h.ok("GET", "/v1/incidents/INC-42?client=acme", "audit")
            return {o["id"]: o for o in inc["obligations"]}[oid]

        wait_for(lambda: state("authority-6s")["overdue_at"], message="overdue recorded")
        self.assertEqual(state("authority-6s")["state"], "overdue")

        # The other is met before its deadline: its overdue notice never goes.
        wait_for(lambda: mails("lee@acme.example", "customers-30s"),
                 message="the 25s-before reminder")
        r = h.request("POST", "/v1/incidents/INC-42/obligations/customers-30s/met?client=acme",
                      "admin", {"note": "Customers told by email <today>"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body["state"], "met")
        self.assertIs(r.body["already_met"], False)
        self.assertGreaterEqual(r.body["cancelled_messages"], 1)
        cancelled = [m for m in r.body["messages"] if m["kind"] == "overdue"]
        self.assertTrue(cancelled and all(m["status"] == "cancelled" for m in cancelled))
        again = h.ok("POST", "/v1/incidents/INC-42/obligations/customers-30s/met?client=acme",
                     "admin")
        self.assertIs(again["already_met"], True)
        self.assertEqual(h.request("POST", "/v1/incidents/INC-42/obligations/unused/met"
                                   "?client=acme", "admin").status, 409)
        self.assertEqual(h.request("POST", "/v1/incidents/INC-42/obligations/nope/met"
                                   "?client=acme", "admin").status, 404)
        self.assertEqual(h.request("POST", "/v1/incidents/INC-42/obligations/unused/met",
                                   "admin").status, 400)

        timeline = h.ok("GET", "/v1/incidents/INC-42?client=acme", "audit")["timeline"]
        types = [(e["type"], e.get("obligation")) for e in timeline]
        for expected in [("obligation.started", "authority-6s"),
                         ("obligation.overdue", "authority-6s"),
                         ("obligation.started", "customers-30s"),
                         ("obligation.met", "customers-30s")]:
            self.assertIn(expected, types)
        rep = h.ok("GET", "/v1/incidents/INC-42/report?client=acme", "audit")
        ob = {o["id"]: o for o in rep["obligations"]}
        self.assertEqual((ob["authority-6s"]["state"], ob["customers-30s"]["state"]),
                         ("overdue", "met"))
        page = h.request("GET", "/v1/incidents/INC-42/report?client=acme&format=html",
                         "audit").body
        self.assertIn("Customers told by email &lt;today&gt;", page)
        kinds = [a["kind"] for a in h.ok("GET", "/v1/audit?limit=500", "audit")["items"]]
        for k in ("obligation.started", "obligation.overdue", "obligation.met"):
            self.assertIn(k, kinds)
        eff = h.ok("GET", "/v1/reports/effectiveness?client=acme", "audit")
        self.assertEqual(eff["obligations"]["overdue"], 1)
        self.assertEqual(eff["obligations"]["met"], 1)
        # Nothing about customers-30s is sent after it was met.
        count = len(mails("lee@acme.example", "customers-30s"))
        self.assertEqual(count, 1)

    def test_obligations_rejected_with_the_field(self):
        h = self.start_stack()
        self.setup_acme(h, slack=False, webhook=False)
        base = {"id": "gdpr-72h", "starts": "identification", "within": "72h",
                "remind": ["24h", "4h"], "roles": ["legal"]}
        cases = [
            (dict(base, starts="identifcation"), "obligations[0].starts"),
            (dict(base, within="soon"), "obligations[0].within"),
            (dict(base, remind=["80h"]), "obligations[0].remind[0]"),
            (dict(base, roles=[]), "obligations[0].roles"),
            (dict(base, channels=["chat"]), "obligations[0].channels[0]"),
            (dict(base, extra=1), "obligations[0].extra"),
            (dict(base, id="bad id"), "obligations[0].id"),
        ]
        for item, field in cases:
            r = h.request("PUT", "/v1/clients/acme/obligations", "admin", {"obligations": [item]})
            self.assertEqual(r.status, 422, (item, r.body))
            self.assertEqual(r.body["error"]["code"], "invalid_obligations")
            self.assertEqual(r.body["error"]["field"], field)
        r = h.request("PUT", "/v1/clients/acme/obligations", "admin",
                      {"obligations": [base, base]})
        self.assertEqual(r.body["error"]["field"], "obligations[1].id")
        saved = self.obligations(h, base)
        self.assertEqual(saved["obligations"][0]["remind"], ["1d", "4h"])
        self.assertEqual(saved["obligations"][0]["within"], "3d")


if __name__ == "__main__":
    unittest.main()
