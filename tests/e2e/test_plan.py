"""The plan's schedule end to end: delay, quiet hours ignored, repeats, acknowledgement links,
escalation, the preview, and repeats across a restart."""

import datetime
import re
import time
import unittest
import urllib.error
import urllib.request

from harness import SLOW, HeraldTestCase, closed_port, event, wait_for, write_config

ACK_RE = re.compile(r"http://127\.0\.0\.1:(\d+)/ack/([A-Za-z0-9_]+)\?sig=([A-Za-z0-9_\-=%]+)")
# A negative assertion ("nothing more arrives") needs a bounded wait; repeats come every 2 s.
QUIET_WAIT = 5.0 * SLOW
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def seconds(n):
    return datetime.timedelta(seconds=n)


def person(name, roles, email, quiet_hours=None, timezone="UTC"):
    return {"name": name, "roles": roles, "email": email, "timezone": timezone,
            "quiet_hours": quiet_hours, "channels": ["email"]}


def text_part(msg):
    return next(p for p in msg.iter_parts() if p.get_content_type() == "text/plain").get_content()


def http(method, url):
    """A bare request as a browser would make it: no token, no body."""
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with _OPENER.open(req, timeout=30 * SLOW) as r:
            return r.status, r.headers, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode("utf-8", "replace")


class PlanTest(HeraldTestCase):

    def start(self, fixed_port=False):
        """Receivers and herald; with fixed_port, listen and public_url name one free port so
        that the acknowledgement links in messages reach this daemon."""
        self.mail = self.start_mail()
        self.hooks = self.start_hooks()
        kw = {}
        if fixed_port:
            port = closed_port()
            kw = {"listen": f"127.0.0.1:{port}", "public_url": f"http://127.0.0.1:{port}"}
        self.config = write_config(self.workdir, self.mail.port, self.hooks.port, **kw)
        self.h = self.start_herald(self.config)
        if fixed_port:
            self.assertEqual(self.h.port, port)
        self.h.ok("PUT", "/v1/clients/acme", "admin", {"name": "Acme Corp", "timezone": "UTC"})
        return self.h

    def contact(self, contact_id, body):
        self.h.ok("PUT", f"/v1/clients/acme/contacts/{contact_id}", "admin", body)

    def plan(self, *rules):
        return self.h.ok("PUT", "/v1/clients/acme/plan", "admin", {"rules": list(rules)},
                         expect=200)

    def post(self, event_id, phase="containment", at=None):
        at = at or utcnow()
        at = at.replace(microsecond=at.microsecond // 1000 * 1000)  # what RFC 3339 ms keeps
        r = self.h.request("POST", "/v1/events", "ingest",
                           event(event_id, phase=phase, occurred_at=rfc3339(at)))
        self.assertEqual(r.status, 202, r.body)
        return at, r.body

    def mails_to(self, address):
        return [(r, m) for r, m in self.mail.emails() if r["rcpt_tos"] == [address]]

    def wait_mails(self, address, count, timeout=None):
        kw = {"timeout": timeout} if timeout else {}
        return wait_for(lambda: len(self.mails_to(address)) >= count and self.mails_to(address),
                        message=f"{count} email(s) to {address}", **kw)

    def delivery_of(self, msg):
        """The delivery behind an email: its Message-ID is <ID@msp.example>."""
        mid = msg["Message-ID"].strip("<>").split("@")[0]
        return self.h.ok("GET", f"/v1/deliveries/{mid}", "audit")

    def ack_link(self, msg):
        links = ACK_RE.findall(text_part(msg))
        self.assertEqual(len(links), 1, text_part(msg))
        port, mid, sig = links[0]
        self.assertEqual(int(port), self.h.port)
        self.assertEqual(f"<{mid}@msp.example>", msg["Message-ID"])
        return f"http://127.0.0.1:{port}/ack/{mid}?sig={sig}", mid

    def timeline(self, incident="INC-42"):
        return self.h.ok("GET", f"/v1/incidents/{incident}?client=acme", "audit")["timeline"]

    # ---------------------------------------------------------------------------- delay

    def test_delay_holds_the_message(self):
        self.start()
        self.contact("lee", person("Lee Park", ["legal"], "lee@acme.example"))
        self.plan({"id": "late", "phases": ["containment"], "roles": ["legal"],
                   "channels": ["email"], "delay": "2s", "quiet_hours": "ignore"})
        at, body = self.post("evt-d")
        self.assertEqual(body["messages"], 1)
        [d] = self.h.deliveries(client="acme")
        self.assertEqual(d["status"], "scheduled", d)
        self.assertEqual(parse_time(d["send_at"]), at + seconds(2))
        self.assertEqual(self.mail.records(), [], "nothing goes out before the delay")
        self.wait_mails("lee@acme.example", 1)
        arrived = utcnow()
        self.assertGreaterEqual(arrived, at + seconds(1.9))
        [d] = self.h.wait_deliveries(1, client="acme")
        self.assertGreaterEqual(parse_time(d["delivered_at"]), parse_time(d["send_at"]))
        self.assertEqual(d["kind"], "notify")

    # ---------------------------------------------------------------------- quiet hours

    def test_quiet_hours_ignore_sends_at_once(self):
        self.start()
        now = utcnow()
        quiet = {"start": (now - datetime.timedelta(hours=1)).strftime("%H:%M"),
                 "end": (now + datetime.timedelta(hours=2)).strftime("%H:%M")}
        self.contact("dana", person("Dana Lee", ["executive"], "dana@acme.example", quiet))
        self.contact("lee", person("Lee Park", ["legal"], "lee@acme.example", quiet))
        self.plan({"id": "urgent", "phases": ["containment"], "roles": ["executive"],
                   "channels": ["email"], "quiet_hours": "ignore"},
                  {"id": "polite", "phases": ["containment"], "roles": ["legal"],
                   "channels": ["email"]})
        at, _ = self.post("evt-q")
        self.wait_mails("dana@acme.example", 1, timeout=10 * SLOW)
        # The mail arrives before herald records the outcome: wait for the record too.

        def recorded():
            items = {d["contact"]: d for d in self.h.deliveries(client="acme")}
            return items if items["dana"]["status"] != "sending" else None
        items = wait_for(recorded, 10 * SLOW, "dana's delivery to be recorded")
        self.assertEqual(items["dana"]["status"], "delivered", items["dana"])
        self.assertLess(parse_time(items["dana"]["send_at"]), at + seconds(1))
        # The same quiet hours under `respect` still defer.
        self.assertEqual(items["lee"]["status"], "scheduled", items["lee"])
        self.assertGreater(parse_time(items["lee"]["send_at"]), at + datetime.timedelta(hours=1))
        self.assertEqual(self.mails_to("lee@acme.example"), [])

    # --------------------------------------------------------------------------- repeat

    def test_repeat_until_the_phase_moves(self):
        self.start()
        self.contact("lee", person("Lee Park", ["legal"], "lee@acme.example"))
        stored = self.plan({"id": "nag", "phases": ["containment"], "roles": ["legal"],
                            "channels": ["email"], "repeat": "2s", "quiet_hours": "ignore"})
        self.assertTrue(any("nag" in w and "repeats" in w for w in stored["warnings"]),
                        stored["warnings"])
        self.post("evt-r")
        mails = self.wait_mails("lee@acme.example", 3, timeout=15 * SLOW)

        # The mails arrive before herald records their outcomes: wait for three records too.
        def three_recorded():
            items = sorted(self.h.deliveries(client="acme"), key=lambda d: d["update_number"])
            done = [d for d in items if d["status"] == "delivered"]
            return items if len(done) >= 3 else None
        items = wait_for(three_recorded, 10 * SLOW, "three deliveries recorded")
        delivered = [d for d in items if d["status"] == "delivered"]
        self.assertEqual([d["update_number"] for d in delivered][:3], [1, 2, 3])
        self.assertEqual(len({d["id"] for d in items}), len(items))
        for d in items:
            self.assertEqual((d["event_id"], d["repeat"], d["kind"], d["rule"]),
                             ("evt-r", "2s", "notify", "nag"), d)
        self.assertEqual(len({m["Message-ID"] for _, m in mails}), len(mails))
        by_number = {self.delivery_of(m)["update_number"]: m for _, m in mails}
        self.assertEqual(set(by_number) >= {1, 2, 3}, True, sorted(by_number))
        self.assertIn("update 1", text_part(by_number[1]).lower())
        self.assertIn("update 2", text_part(by_number[2]).lower())
        self.assertNotEqual(text_part(by_number[1]), text_part(by_number[2]))
        # Repeats follow the plan's rhythm (2 s apart), not the dispatcher's pace.
        planned = [parse_time(d["planned_at"]) for d in items]
        for a, b in zip(planned, planned[1:]):
            self.assertEqual(b - a, seconds(2))

        # The incident moves on: the pending update is cancelled, no more arrive.
        self.post("evt-r2", phase="eradication")

        def settled():
            items = self.h.deliveries(client="acme")
            return items if all(d["status"] in ("delivered", "cancelled") for d in items) \
                else None

        items = wait_for(settled, 10 * SLOW, "containment's updates to settle")
        cancelled = [d for d in items if d["status"] == "cancelled"]
        self.assertEqual(len(cancelled), 1, items)
        self.assertIn("moved to eradication", cancelled[0]["last_error"])
        count = len(self.mails_to("lee@acme.example"))
        self.assertEqual(count, len(items) - 1)
        time.sleep(QUIET_WAIT)  # negative: nothing more may arrive
        self.assertEqual(len(self.mails_to("lee@acme.example")), count)
        self.assertEqual(len(self.h.deliveries(client="acme")), len(items))
        numbers = sorted(d["update_number"] for d in items)
        self.assertEqual(numbers, list(range(1, len(items) + 1)))

    # -------------------------------------------------------------------- acknowledgement

    def test_ack_link_stops_that_contacts_repeats(self):
        self.start(fixed_port=True)
        self.contact("lee", person("Lee Park", ["legal"], "lee@acme.example"))
        self.contact("dana", person("Dana Lee", ["legal"], "dana@acme.example"))
        self.plan({"id": "nag", "phases": ["containment"], "roles": ["legal"],
                   "channels": ["email"], "repeat": "2s", "quiet_hours": "ignore"})
        self.post("evt-a")
        [(_, first)] = self.wait_mails("lee@acme.example", 1)[:1]
        link, mid = self.ack_link(first)
        self.wait_mails("dana@acme.example", 1)

        # GET shows a form and acknowledges nothing.
        status, headers, page = http("GET", link)
        self.assertEqual(status, 200, page)
        self.assertIn("text/html", headers["Content-Type"])
        self.assertRegex(page, r'(?i)<form[^>]*method="post"')
        self.assertIn("I have read it", page)
        self.assertIsNone(self.h.ok("GET", f"/v1/deliveries/{mid}", "audit")["acknowledged_at"])

        # A wrong signature is refused, whatever the method.
        wrong = re.sub(r"sig=.*$", "sig=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", link)
        for method in ("GET", "POST"):
            status, _, page = http(method, wrong)
            self.assertEqual(status, 404, page)
        status, _, _ = http("POST", link.replace(mid, mid[:-1] + ("0" if mid[-1] != "0"
                                                                  else "1")))
        self.assertEqual(status, 404)
        self.assertIsNone(self.h.ok("GET", f"/v1/deliveries/{mid}", "audit")["acknowledged_at"])

        status, _, page = http("POST", link)
        self.assertEqual(status, 200, page)
        self.assertIn("acknowledged", page.lower())
        self.assertNotIn("already", page.lower())
        # What lee had been sent (or was being sent) when the ack committed: nothing after.
        lee_then = [d for d in self.h.deliveries(client="acme") if d["contact"] == "lee"]
        acked = self.h.ok("GET", f"/v1/deliveries/{mid}", "audit")
        self.assertIsNotNone(acked["acknowledged_at"])
        status, _, page = http("POST", link)
        self.assertEqual(status, 200, page)
        self.assertIn("already", page.lower())
        self.assertEqual(self.h.ok("GET", f"/v1/deliveries/{mid}", "audit")["acknowledged_at"],
                         acked["acknowledged_at"], "a second POST changes nothing")
        status, _, page = http("GET", link)
        self.assertEqual(status, 200)
        self.assertIn("already", page.lower())

        # dana, who did not acknowledge, keeps getting updates; lee gets none.
        lee_sent = max(d["update_number"] for d in lee_then
                       if d["status"] not in ("scheduled", "cancelled"))
        dana_now = len(self.mails_to("dana@acme.example"))
        self.wait_mails("dana@acme.example", dana_now + 2, timeout=QUIET_WAIT + 5 * SLOW)
        lee = [d for d in self.h.deliveries(client="acme") if d["contact"] == "lee"]
        self.assertTrue(all(d["update_number"] <= lee_sent for d in lee
                            if d["status"] != "cancelled"), lee)
        self.assertTrue(all(d["status"] in ("delivered", "cancelled") for d in lee), lee)
        self.assertTrue(all(d["last_error"] == "cancelled: the contact acknowledged"
                            for d in lee if d["status"] == "cancelled"), lee)
        self.assertEqual(len(self.mails_to("lee@acme.example")),
                         len([d for d in lee if d["status"] != "cancelled"]))
        self.assertLessEqual(len(self.mails_to("lee@acme.example")), lee_sent)

        acks = [e for e in self.timeline() if e["type"] == "ack"]
        self.assertEqual(len(acks), 1, acks)
        self.assertEqual((acks[0]["contact"], acks[0]["message"], acks[0]["rule"]),
                         ("lee", mid, "nag"))
        audit = self.h.ok("GET", "/v1/audit?kind=ack.received", "audit")["items"]
        self.assertEqual(len(audit), 1, audit)
        self.assertEqual(audit[0]["kind"], "ack.received")

    # ------------------------------------------------------------------------ escalation

    def escalation_setup(self, after):
        self.contact("tech", person("Tess Tech", ["technician"], "tech@acme.example"))
        self.contact("ic", person("Ian Commander", ["incident_commander"], "ic@acme.example"))
        self.plan({"id": "techs", "phases": ["containment"], "roles": ["technician"],
                   "channels": ["email"], "quiet_hours": "ignore",
                   "escalate": {"after": after, "to_roles": ["incident_commander"]}})

    def escalation_entries(self):
        return [e for e in self.timeline() if e["type"] == "escalation"]

    def test_escalation_fires_without_ack(self):
        self.start()
        self.escalation_setup("2s")
        at, _ = self.post("evt-e")
        self.wait_mails("tech@acme.example", 1)
        [(_, msg)] = self.wait_mails("ic@acme.example", 1)
        d = self.delivery_of(msg)
        self.assertEqual((d["kind"], d["role"], d["contact"], d["rule"], d["channel"]),
                         ("escalation", "incident_commander", "ic", "techs", "email"), d)
        self.assertGreaterEqual(parse_time(d["created_at"]), at + seconds(1.9))
        [entry] = self.escalation_entries()
        self.assertEqual(entry["status"], "fired", entry)
        self.assertEqual(entry["messages"], 1)
        self.assertEqual(entry["to_roles"], ["incident_commander"])
        audit = self.h.ok("GET", "/v1/audit?kind=escalation.fired", "audit")["items"]
        self.assertEqual(len(audit), 1, audit)
        self.assertEqual(len(self.h.deliveries(client="acme")), 2)

    def test_escalation_stopped_by_ack(self):
        self.start(fixed_port=True)
        # Sanitizer builds deliver slower: the ack must land before `after` passes.
        self.escalation_setup(f"{round(2 * SLOW)}s")
        self.post("evt-e")
        [(_, msg)] = self.wait_mails("tech@acme.example", 1)
        link, _ = self.ack_link(msg)
        status, _, page = http("POST", link)
        self.assertEqual(status, 200, page)

        def resolved():
            entries = self.escalation_entries()
            return entries if entries and entries[0]["status"] != "pending" else None

        [entry] = wait_for(resolved, 10 * SLOW, "the escalation to be resolved")
        self.assertEqual(entry["status"], "acknowledged", entry)
        self.assertEqual(entry["messages"], 0)
        self.assertEqual(self.mails_to("ic@acme.example"), [])
        self.assertEqual([d["contact"] for d in self.h.deliveries(client="acme")], ["tech"])
        self.assertEqual(self.h.ok("GET", "/v1/audit?kind=escalation.fired", "audit")["items"],
                         [])
        [ack] = self.h.ok("GET", "/v1/audit?kind=ack.received", "audit")["items"]
        self.assertEqual(ack["data"]["escalations_stopped"], 1, ack)

    def test_same_phase_event_does_not_double_the_schedule(self):
        """A second event in the same phase (news, same phase) replaces the first one's repeats
        and escalation: the contact does not get two interleaved update streams, nor the
        incident commander two escalations."""
        self.start()
        self.contact("lee", person("Lee Park", ["legal"], "lee@acme.example"))
        self.contact("ic", person("Ian Commander", ["incident_commander"], "ic@acme.example"))
        self.plan({"id": "nag", "phases": ["containment"], "roles": ["legal"],
                   "channels": ["email"], "repeat": "2s", "quiet_hours": "ignore",
                   "escalate": {"after": "3s", "to_roles": ["incident_commander"]}})
        self.post("evt-1")
        self.wait_mails("lee@acme.example", 1)
        second, _ = self.post("evt-2")

        def escalations_done():
            entries = self.escalation_entries()
            busy = [d for d in self.h.deliveries(client="acme")
                    if d["contact"] == "ic" and d["status"] not in ("delivered", "failed")]
            return entries if entries and not busy and \
                all(e["status"] != "pending" for e in entries) else None

        entries = wait_for(escalations_done, 15 * SLOW, "the escalations to be resolved")
        items = self.h.deliveries(client="acme")
        old_after = [(d["update_number"], d["status"], d["send_at"]) for d in items
                     if d["event_id"] == "evt-1" and d["contact"] == "lee"
                     and d["status"] != "cancelled" and parse_time(d["send_at"]) > second]
        problems = []
        if old_after:
            problems.append(f"evt-1's updates still go out after evt-2: {old_after}")
        ic_mails = len(self.mails_to("ic@acme.example"))
        if ic_mails > 1:
            problems.append(f"the incident commander got {ic_mails} escalations; timeline: "
                            f"{[(e['status'], e['due_at']) for e in entries]}")
        self.assertFalse(problems, "\n".join(problems))

    # --------------------------------------------------------------------------- preview

    def test_preview(self):
        h = self.start()
        # dana sleeps 09:00-12:00 UTC; lee has no quiet hours.
        self.contact("dana", person("Dana Lee", ["executive"], "dana@acme.example",
                                    {"start": "09:00", "end": "12:00"}))
        self.contact("lee", person("Lee Park", ["legal"], "lee@acme.example"))
        self.contact("ic", person("Ian Commander", ["incident_commander"], "ic@acme.example"))
        self.plan({"id": "execs", "phases": ["containment"], "roles": ["executive"],
                   "channels": ["email"], "delay": "5m"},
                  {"id": "legal", "phases": ["containment"], "roles": ["legal"],
                   "channels": ["email"], "repeat": "30m",
                   "escalate": {"after": "15m", "to_roles": ["incident_commander"]}})
        before = len(h.ok("GET", "/v1/audit?limit=500", "audit")["items"])
        preview = h.ok("POST", "/v1/clients/acme/plan/preview", "audit",
                       {"phase": "containment", "severity": "high",
                        "at": "2026-12-04T10:00:00Z"})
        by_contact = {m.get("contact"): m for m in preview["messages"]}
        self.assertEqual(set(by_contact), {"dana", "lee"})
        dana = by_contact["dana"]
        self.assertEqual((dana["rule"], dana["channel"], dana["address"]),
                         ("execs", "email", "dana@acme.example"))
        self.assertEqual(dana["due_at"], "2026-12-04T10:05:00Z")
        self.assertIs(dana["deferred_by_quiet_hours"], True)
        self.assertEqual(dana["send_at"], "2026-12-04T12:00:00Z")
        self.assertNotIn("next_updates", dana)
        lee = by_contact["lee"]
        self.assertIs(lee["deferred_by_quiet_hours"], False)
        self.assertEqual(lee["send_at"], "2026-12-04T10:00:00Z")
        self.assertEqual(lee["repeat"], "30m")
        self.assertEqual(lee["next_updates"], ["2026-12-04T10:30:00Z", "2026-12-04T11:00:00Z",
                                               "2026-12-04T11:30:00Z"])
        [esc] = preview["escalations"]
        self.assertEqual((esc["rule"], esc["after"], esc["due_at"], esc["to_roles"]),
                         ("legal", "15m", "2026-12-04T10:15:00Z", ["incident_commander"]))
        self.assertEqual([(m["contact"], m["channel"]) for m in esc["messages"]],
                         [("ic", "email")])
        # Nothing was sent nor stored.
        self.assertEqual(h.deliveries(client="acme"), [])
        self.assertEqual(len(h.ok("GET", "/v1/audit?limit=500", "audit")["items"]), before)
        self.assertEqual(self.mail.records(), [])

    def test_preview_repeats_during_quiet_hours(self):
        """A repeating rule for a contact in quiet hours: the updates follow the first message
        at the rule's interval; they do not all fall at the end of the quiet hours."""
        h = self.start()
        self.contact("dana", person("Dana Lee", ["executive"], "dana@acme.example",
                                    {"start": "09:00", "end": "12:00"}))
        self.plan({"id": "execs", "phases": ["containment"], "roles": ["executive"],
                   "channels": ["email"], "repeat": "30m"})
        preview = h.ok("POST", "/v1/clients/acme/plan/preview", "audit",
                       {"phase": "containment", "severity": "high",
                        "at": "2026-12-04T10:00:00Z"})
        [dana] = preview["messages"]
        self.assertEqual(dana["send_at"], "2026-12-04T12:00:00Z")
        # As the scheduler does it: the first update at the end of the quiet hours, then
        # every 30 minutes from there (not the missed 10:30, 11:00, 11:30 all at 12:00).
        self.assertEqual(dana["next_updates"], ["2026-12-04T12:30:00Z", "2026-12-04T13:00:00Z",
                                                "2026-12-04T13:30:00Z"])

    # --------------------------------------------------------------------------- restart

    def test_repeats_continue_after_restart(self):
        h = self.start()
        self.contact("lee", person("Lee Park", ["legal"], "lee@acme.example"))
        self.plan({"id": "nag", "phases": ["containment"], "roles": ["legal"],
                   "channels": ["email"], "repeat": "3s", "quiet_hours": "ignore"})
        self.post("evt-s")
        self.wait_mails("lee@acme.example", 1)
        self.stop_herald(h)
        h2 = self.start_herald(self.config)
        self.h = h2
        self.wait_mails("lee@acme.example", 2, timeout=15 * SLOW)
        mails = [m for _, m in self.mails_to("lee@acme.example")]
        numbers = [self.delivery_of(m)["update_number"] for m in mails]
        self.assertEqual(len(numbers), len(set(numbers)), f"an update went twice: {numbers}")
        self.assertIn(2, numbers)
        items = h2.deliveries(client="acme")
        keys = [(d["contact"], d["channel"], d["update_number"]) for d in items]
        self.assertEqual(len(keys), len(set(keys)), keys)
        self.assertEqual(sorted(d["update_number"] for d in items),
                         list(range(1, len(items) + 1)))

    def test_no_burst_after_downtime(self):
        """Updates missed while the daemon was down are not all sent at once on restart: one
        catch-up update, then the rhythm again."""
        h = self.start()
        self.contact("lee", person("Lee Park", ["legal"], "lee@acme.example"))
        self.plan({"id": "nag", "phases": ["containment"], "roles": ["legal"],
                   "channels": ["email"], "repeat": "1s", "quiet_hours": "ignore"})
        self.post("evt-b")
        self.wait_mails("lee@acme.example", 1)
        self.stop_herald(h)
        time.sleep(5)  # down for five intervals
        restarted = utcnow()
        self.h = self.start_herald(self.config)

        def caught_up():
            items = self.h.deliveries(client="acme")
            return items if any(parse_time(d["planned_at"]) > restarted for d in items) else None

        items = wait_for(caught_up, 15 * SLOW, "an update planned after the restart")
        missed = sorted((d["update_number"], d["planned_at"], d["delivered_at"]) for d in items
                        if d["status"] != "cancelled"
                        and parse_time(d["planned_at"]) < restarted
                        and d["delivered_at"] and parse_time(d["delivered_at"]) > restarted)
        self.assertLessEqual(len(missed), 1, f"missed updates sent in a burst: {missed}")

if __name__ == "__main__":
    unittest.main()
