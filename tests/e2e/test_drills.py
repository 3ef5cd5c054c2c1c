"""Drills end to end: a drill through the real plan to real receivers, acknowledged through the
link in the email, and its report checked against what the receivers actually got; the plan's
gaps; scheduled drills; effectiveness figures that keep drills apart."""

import datetime
import json
import os
import re
import subprocess
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
import zoneinfo

from harness import (HERALD_BIN, SLOW, TOKENS, HeraldTestCase, closed_port, wait_for, whsec,
                     write_config)

SMS_PATH = "/2010-04-01/Accounts/ACtest/Messages.json"
ACK_RE = re.compile(r"http://127\.0\.0\.1:(\d+)/ack/([A-Za-z0-9_]+)\?sig=([A-Za-z0-9_\-=%]+)")
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def text_part(msg):
    return next(p for p in msg.iter_parts() if p.get_content_type() == "text/plain").get_content()


def post_link(url):
    req = urllib.request.Request(url, method="POST", data=b"")
    try:
        with _OPENER.open(req, timeout=30 * SLOW) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


PLAN = {"rules": [
    {"id": "contain-people", "phases": ["containment", "eradication"], "min_severity": "high",
     "roles": ["executive", "legal"], "channels": ["email", "sms"], "quiet_hours": "ignore"},
    {"id": "contain-hr", "phases": ["containment"], "min_severity": "critical",
     "roles": ["hr"], "channels": ["email"]},
    {"id": "contain-rooms", "phases": ["containment", "eradication"], "min_severity": "low",
     "endpoints": ["soc-slack", "siem"]},
]}


class DrillTest(HeraldTestCase):

    def start(self, delivery=None):
        self.mail = self.start_mail()
        self.hooks = self.start_hooks()
        port = closed_port()
        self.config = write_config(self.workdir, self.mail.port, self.hooks.port,
                                   listen=f"127.0.0.1:{port}",
                                   public_url=f"http://127.0.0.1:{port}", delivery=delivery)
        self.h = self.start_herald(self.config)
        self.secret = whsec()
        self.setup_acme(self.h, webhook_secret=self.secret, plan=PLAN)
        return self.h

    def drill(self, phase="containment", severity="critical"):
        r = self.h.request("POST", "/v1/clients/acme/drills", "admin",
                           {"phase": phase, "severity": severity})
        self.assertEqual(r.status, 202, r.body)
        self.assertRegex(r.body["drill"], r"^drl_[0-9a-f]+$")
        return r.body

    def report(self, drill_id):
        return self.h.ok("GET", f"/v1/drills/{drill_id}", "audit")

    def test_drill_reaches_real_receivers_and_report_matches(self):
        h = self.start()
        started = self.drill()
        drill_id, incident = started["drill"], started["incident"]
        # dana email+sms, lee email (no phone: a gap), soc-slack, siem; nobody holds hr.
        self.assertEqual(started["messages"], 5)
        items = h.wait_deliveries(5, client="acme", incident=incident)

        # Every message says it is a drill, on every channel.
        mails = wait_for(lambda: len(self.mail.emails()) == 2 and self.mail.emails(),
                         message="2 drill emails")
        for _, msg in mails:
            self.assertTrue(str(msg["Subject"]).startswith("[DRILL] "), msg["Subject"])
            self.assertIn("DRILL", text_part(msg))
        sms = self.hooks.requests(SMS_PATH)
        self.assertEqual(len(sms), 1)
        body = urllib.parse.parse_qs(sms[0]["body"])["Body"][0]
        self.assertIn("DRILL", body)
        hook = json.loads(self.hooks.requests("/hooks/siem")[0]["body"])
        self.assertIs(hook["drill"], True)
        self.assertEqual(hook["incident"]["id"], incident)
        slack = json.loads(self.hooks.requests("/slack/T000/B000/XXXXSECRET")[0]["body"])
        self.assertIn("DRILL", slack["text"])

        # Dana confirms through the link in her email.
        dana_mail = next(m for r, m in mails if r["rcpt_tos"] == ["dana@acme.example"])
        port, mid, sig = ACK_RE.findall(text_part(dana_mail))[0]
        self.assertEqual(post_link(f"http://127.0.0.1:{port}/ack/{mid}?sig={sig}"), 200)

        rep = self.report(drill_id)
        self.assertEqual((rep["drill"], rep["client"], rep["incident"]),
                         (drill_id, "acme", incident))
        self.assertEqual((rep["phase"], rep["severity"]), ("containment", "critical"))
        self.assertEqual(rep["status"], "finished")
        self.assertEqual(rep["started_by"], "admin")
        s = rep["summary"]
        self.assertEqual((s["messages"], s["delivered"], s["failed"]), (5, 5, 0))
        self.assertEqual((s["contacts"], s["contacts_reached"], s["contacts_acknowledged"]),
                         (2, 2, 1))
        self.assertEqual((s["endpoints"], s["endpoints_reached"]), (2, 2))

        # The report says exactly what the receivers got, when the log says it went.
        by_id = {d["id"]: d for d in items}
        people = {c["contact"]: c for c in rep["contacts"]}
        self.assertEqual(set(people), {"dana", "lee"})
        dana = people["dana"]
        self.assertEqual(dana["name"], "Dana Lee")
        self.assertTrue(dana["acknowledged"])
        self.assertIsNotNone(dana["time_to_acknowledge_ms"])
        dch = {c["channel"]: c for c in dana["channels"]}
        self.assertEqual(set(dch), {"email", "sms"})
        self.assertTrue(dch["email"]["acknowledged"])
        self.assertFalse(dch["sms"]["acknowledged"])
        self.assertEqual(dch["email"]["messages"], [mid])
        self.assertEqual(f"<{mid}@msp.example>", dana_mail["Message-ID"])
        for c in rep["contacts"] + rep["endpoints"]:
            for ch in c["channels"]:
                self.assertTrue(ch["delivered"], ch)
                self.assertEqual(ch["status"], "delivered")
                (msg_id,) = ch["messages"]
                self.assertEqual(ch["delivered_at"], by_id[msg_id]["delivered_at"])
                delay = parse_time(ch["delivered_at"]) - parse_time(rep["started_at"])
                self.assertAlmostEqual(ch["time_to_deliver_ms"],
                                       delay.total_seconds() * 1000, delta=1)
        lee = people["lee"]
        self.assertFalse(lee["acknowledged"])
        self.assertEqual([c["channel"] for c in lee["channels"]], ["email"])
        lee_msg = lee["channels"][0]["messages"][0]
        self.assertIn(f"<{lee_msg}@msp.example>",
                      [m["Message-ID"] for r, m in mails if r["rcpt_tos"] == ["lee@acme.example"]])
        rooms = {e["endpoint"]: e for e in rep["endpoints"]}
        self.assertEqual(set(rooms), {"soc-slack", "siem"})
        self.assertEqual(rooms["siem"]["channels"][0]["messages"][0],
                         self.hooks.requests("/hooks/siem")[0]["headers"]["webhook-id"])

        # Gaps: nobody holds hr, lee has no phone for an sms rule, four phases have no rule.
        gaps = rep["gaps"]
        self.assertEqual(gaps["roles_without_contacts"],
                         [{"role": "hr", "rules": ["contain-hr"]}])
        self.assertEqual(gaps["contacts_without_address"],
                         [{"contact": "lee", "rule": "contain-people", "channels": ["sms"],
                           "reasons": ["no phone number"], "reachable": True}])
        self.assertEqual(gaps["phases_without_rules"],
                         ["preparation", "identification", "recovery", "lessons_learned"])
        self.assertEqual(gaps["not_reached_in_recent_drills"], [])
        self.assertEqual(h.ok("GET", "/v1/clients/acme/gaps", "admin"), gaps)

        # The drill is an incident of its own, marked drill, audited.
        inc = h.ok("GET", f"/v1/incidents/{incident}?client=acme", "audit")
        self.assertIs(inc["drill"], True)
        audit = h.ok("GET", "/v1/audit?kind=drill.started", "audit")["items"]
        self.assertEqual([a["data"]["drill"] for a in audit], [drill_id])

        # Effectiveness: the drill is counted only as a drill.
        eff = h.ok("GET", "/v1/reports/effectiveness?client=acme", "audit")
        self.assertEqual(eff["incidents"], 0)
        self.assertEqual(eff["phases"], [])
        self.assertEqual(eff["channels"], [])
        self.assertEqual(eff["drills"]["count"], 1)
        self.assertEqual(eff["drills"]["results"], {"passed": 1, "gaps": 0, "pending": 0})
        self.assertEqual(eff["drills"]["items"][0]["contacts_acknowledged"], 1)
        listed = h.ok("GET", "/v1/clients/acme/drills", "audit")["items"]
        self.assertEqual([d["drill"] for d in listed], [drill_id])

    def test_unreachable_endpoint_is_a_gap_in_later_drills(self):
        h = self.start(delivery={"retry_horizon": "2s", "max_backoff": "500ms",
                                 "attempt_timeout": "5s"})
        dead = f"http://127.0.0.1:{closed_port()}/dead"
        h.ok("PUT", "/v1/clients/acme/endpoints/dead-hook", "admin",
             {"type": "webhook", "url": dead}, expect=201)
        plan = json.loads(json.dumps(PLAN))
        plan["rules"][2]["endpoints"].append("dead-hook")
        h.ok("PUT", "/v1/clients/acme/plan", "admin", plan)
        drill_id = self.drill(severity="high")["drill"]

        def finished():
            rep = self.report(drill_id)
            return rep if rep["status"] == "finished" else None

        rep = wait_for(finished, message="the drill to finish")
        self.assertEqual(rep["result"], "gaps")
        rooms = {e["endpoint"]: e for e in rep["endpoints"]}
        self.assertFalse(rooms["dead-hook"]["reached"])
        self.assertEqual(rooms["dead-hook"]["channels"][0]["status"], "failed")
        self.assertTrue(rooms["dead-hook"]["channels"][0]["last_error"])
        self.assertTrue(rooms["siem"]["reached"])
        self.assertEqual(rep["gaps"]["not_reached_in_recent_drills"],
                         [{"endpoint": "dead-hook", "drills": [drill_id]}])
        eff = h.ok("GET", "/v1/reports/effectiveness?client=acme", "audit")
        self.assertEqual(eff["drills"]["results"]["gaps"], 1)

    def test_bad_requests(self):
        h = self.start()
        cases = [
            ({"phase": "contianment", "severity": "high"}, 422, "invalid_phase"),
            ({"phase": "containment", "severity": "huge"}, 422, "invalid_severity"),
            ({"phase": "containment", "severity": "high", "x": 1}, 422, "unknown_field"),
        ]
        for body, status, code in cases:
            r = h.request("POST", "/v1/clients/acme/drills", "admin", body)
            self.assertEqual((r.status, r.body["error"]["code"]), (status, code), r.body)
        r = h.request("POST", "/v1/clients/nobody/drills", "admin",
                      {"phase": "containment", "severity": "high"})
        self.assertEqual(r.status, 404, r.body)
        r = h.request("POST", "/v1/clients/acme/drills", "audit",
                      {"phase": "containment", "severity": "high"})
        self.assertEqual(r.status, 403)
        self.assertEqual(h.request("GET", "/v1/drills/drl_nope", "audit").status, 404)
        for body, field in [({"every": "10m", "phase": "containment", "severity": "high"}, "every"),
                            ({"every": "90d", "phase": "x", "severity": "high"}, "phase"),
                            ({"every": "90d", "phase": "containment", "severity": "high",
                              "window": "17:00-09:00"}, "window"),
                            ({"every": "90d", "phase": "containment", "severity": "high",
                              "days": "mon-funday"}, "days")]:
            r = h.request("PUT", "/v1/clients/acme/drill-schedule", "admin", body)
            self.assertEqual(r.status, 422, r.body)
            self.assertEqual(r.body["error"]["field"], field)

    def test_scheduled_drill_runs_in_the_window(self):
        h = self.start()
        r = h.request("PUT", "/v1/clients/acme/drill-schedule", "admin",
                      {"every": "90d", "phase": "containment", "severity": "high",
                       "window": "09:00-17:00", "days": "mon-fri"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual((r.body["every"], r.body["window"], r.body["days"]),
                         ("90d", "09:00-17:00", "mon-fri"))
        # Acme is in Europe/Berlin: the first drill is 90 days out, inside the window, on a
        # weekday, in Berlin time.
        first = parse_time(r.body["next_at"])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertGreaterEqual(first, now + datetime.timedelta(days=89, hours=23))
        local = first.astimezone(zoneinfo.ZoneInfo("Europe/Berlin"))
        self.assertLess(local.weekday(), 5)
        self.assertTrue(9 <= local.hour < 17, local)

        # A schedule whose first slot is now runs at once, once.
        start = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        h.ok("PUT", "/v1/clients/acme/drill-schedule", "admin",
             {"every": "1d", "phase": "containment", "severity": "high", "window": "00:00-24:00",
              "days": "daily", "start": start})
        sched = wait_for(lambda: (s := h.ok("GET", "/v1/clients/acme/drill-schedule",
                                            "audit"))["last_drill"] and s,
                         message="the scheduled drill")
        self.assertGreater(parse_time(sched["next_at"]), now + datetime.timedelta(hours=23))
        rep = self.report(sched["last_drill"])
        self.assertIs(rep["scheduled"], True)
        self.assertEqual(rep["started_by"], "schedule")
        h.wait_deliveries(5, client="acme", incident=rep["incident"])
        self.assertEqual(len(h.ok("GET", "/v1/clients/acme/drills", "audit")["items"]), 1)
        self.assertEqual(h.request("DELETE", "/v1/clients/acme/drill-schedule", "admin").status,
                         204)
        self.assertEqual(h.request("GET", "/v1/clients/acme/drill-schedule", "admin").status, 404)

    def test_idle_background_writes_nothing(self):
        # The daemon looks for due drill schedules and deadlines every second; when nothing is
        # due it must not commit (each commit would be an fsync).
        h = self.start()
        h.ok("PUT", "/v1/clients/acme/drill-schedule", "admin",
             {"every": "90d", "phase": "containment", "severity": "high"})

        def commits():
            m = re.search(r"^herald_store_commits_total (\S+)$",
                          h.request("GET", "/metrics").body, re.M)
            return float(m.group(1))

        before = commits()
        time.sleep(3)
        self.assertEqual(commits(), before)

    def cli(self, *args, token="all"):
        env = {k: v for k, v in os.environ.items() if k not in ("HERALD_URL", "HERALD_TOKEN")}
        env["HERALD_URL"] = f"http://127.0.0.1:{self.h.port}"
        env["HERALD_TOKEN"] = TOKENS[token]
        return subprocess.run([HERALD_BIN, *args], capture_output=True, text=True, env=env,
                              timeout=60 * SLOW, stdin=subprocess.DEVNULL)

    def test_cli_drill_run_and_report(self):
        self.start()
        p = self.cli("drill", "run", "acme", "--phase", "containment", "--severity", "critical",
                     token="admin")
        self.assertEqual(p.returncode, 0, p.stderr)
        m = re.match(r"drill (drl_[0-9a-f]+) started for acme \(containment at critical\): "
                     r"5 message\(s\), incident (DRILL-[0-9a-f]+)\n", p.stdout)
        self.assertIsNotNone(m, p.stdout)
        drill_id, incident = m.groups()
        self.h.wait_deliveries(5, client="acme", incident=incident)
        p = self.cli("drill", "report", drill_id, token="audit")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"status:\s+finished")
        self.assertRegex(p.stdout, r"people:\s+2 reached, 0 acknowledged, of 2")
        rows = [line.split() for line in p.stdout.splitlines()]
        self.assertIn(["dana", "Dana", "Lee", "sms", "delivered"], [r[:5] for r in rows])
        self.assertIn(["siem", "webhook", "webhook", "delivered"], [r[:4] for r in rows])
        self.assertIn('- no contact holds the role "hr" (rules contain-hr)', p.stdout)
        self.assertIn("- contact lee, rule contain-people: cannot use sms (no phone number)",
                      p.stdout)
        p = self.cli("drill", "report", drill_id, "--json", token="audit")
        self.assertEqual(json.loads(p.stdout)["drill"], drill_id)
        p = self.cli("drill", "list", "acme", token="audit")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(drill_id, p.stdout)
        self.assertIn("passed", p.stdout)
        p = self.cli("drill", "run", "acme", "--phase", "nope", "--severity", "high",
                     token="admin")
        self.assertEqual(p.returncode, 1)
        self.assertIn("invalid_phase", p.stderr)
        p = self.cli("drill", "report", "drl_missing", token="audit")
        self.assertEqual(p.returncode, 1)
        p = self.cli("drill", "run", "acme", "--phase", "containment", token="admin")
        self.assertEqual(p.returncode, 2)


if __name__ == "__main__":
    unittest.main()
