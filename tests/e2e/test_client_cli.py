"""The client subcommands of `herald`: the real binary talking to the real daemon's API."""

import csv
import io
import json
import os
import re
import subprocess
import unittest
import urllib.parse

from harness import (HERALD_BIN, SLOW, SOURCE_DIR, TOKENS, HeraldTestCase, closed_port,
                     wait_for)

DOC = os.path.join(SOURCE_DIR, "docs", "cli.md")

FAST = {"max_backoff": "2s", "attempt_timeout": "10s"}

PLAN = {"rules": [
    {"id": "contain-people", "phases": ["containment", "eradication"], "min_severity": "high",
     "roles": ["executive", "legal"], "channels": ["email", "sms"], "delay": "0s",
     "quiet_hours": "ignore", "repeat": "1h",
     "escalate": {"after": "15m", "to_roles": ["incident_commander"]}},
    {"id": "contain-rooms", "phases": ["containment", "eradication"], "min_severity": "low",
     "endpoints": ["soc-slack", "siem"], "delay": "0s"},
]}
# Without repeats and escalation: every message of an event is delivered, none stays scheduled.
SIMPLE_PLAN = {"rules": [dict((k, v) for k, v in r.items() if k not in ("repeat", "escalate"))
                         for r in PLAN["rules"]]}


class ClientCliTest(HeraldTestCase):

    def cli(self, *args, token="all", url=None, stdin=None, env=None):
        """Runs the herald client; returns (exit code, stdout, stderr)."""
        e = {k: v for k, v in os.environ.items() if k not in ("HERALD_URL", "HERALD_TOKEN")}
        e["HERALD_URL"] = url or f"http://127.0.0.1:{self.herald_port}"
        if token is not None:
            e["HERALD_TOKEN"] = TOKENS.get(token, token)
        e.update(env or {})
        p = subprocess.run([HERALD_BIN, *args], capture_output=True, text=True, env=e,
                           cwd=self.workdir, timeout=60 * SLOW, input=stdin)
        self.assert_no_sanitizer_report(p.stdout + p.stderr)
        return p.returncode, p.stdout, p.stderr

    def ok(self, *args, **kw):
        code, out, err = self.cli(*args, **kw)
        self.assertEqual(code, 0, f"herald {' '.join(args)}: {out}{err}")
        return out

    def write(self, name, value):
        path = self.path(name)
        with open(path, "w") as f:
            f.write(value if isinstance(value, str) else json.dumps(value))
        return path

    def start(self, **kw):
        h = self.start_stack(**kw)
        self.herald_port = h.port
        return h

    def table(self, text):
        """A table printed by herald: [header cells, row cells...], split on 2+ spaces."""
        return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines() if line.strip()]

    def setup_with_cli(self, plan=PLAN):
        out = self.ok("clients", "put", "acme", "--name", "Acme Corp", "--timezone",
                      "Europe/Berlin", "--locale", "en", token="admin")
        self.assertIn("created client acme", out)
        out = self.ok("clients", "put", "acme", "--name", "Acme Corp", "--timezone",
                      "Europe/Berlin", token="admin")
        self.assertIn("updated client acme", out)
        out = self.ok("contacts", "put", "acme", "dana", "--name", "Dana Lee", "--role",
                      "executive", "--role", "board", "--email", "dana@acme.example", "--phone",
                      "+15551234567", "--timezone", "America/New_York", "--quiet-hours",
                      "22:00-07:00", "--channel", "email", "--channel", "sms", token="admin")
        self.assertIn("created contact dana of acme (Dana Lee)", out)
        lee = self.write("lee.json", {"name": "Lee Park", "roles": ["legal"],
                                      "email": "lee@acme.example", "timezone": "Europe/Berlin",
                                      "channels": ["email"]})
        self.ok("contacts", "put", "acme", "lee", "--file", lee, token="admin")
        self.ok("endpoints", "put", "acme", "soc-slack", "--type", "slack", "--url",
                f"{self.hooks.base}/slack/T000/B000/XXXXSECRET", token="admin")
        out = self.ok("endpoints", "put", "acme", "siem", "--type", "webhook", "--url",
                      f"{self.hooks.base}/hooks/siem", token="admin")
        self.assertRegex(out, r"secret \(shown once.*\): whsec_\S+")
        path = self.write("plan.json", plan)
        out = self.ok("plan", "put", "acme", "--file", path, token="admin")
        self.assertIn("saved plan version 1 for acme (2 rules)", out)
        if plan is PLAN:
            # Nobody holds incident_commander: the plan saves, with a warning.
            self.assertIn("warning:", out)
            self.assertIn("incident_commander", out)

    def test_admin_commands(self):
        h = self.start()
        self.setup_with_cli()

        rows = self.table(self.ok("clients", "list", token="audit"))
        self.assertEqual(rows[0], ["ID", "NAME", "TIMEZONE", "LOCALE"])
        self.assertEqual(rows[1], ["acme", "Acme Corp", "Europe/Berlin", "en"])
        out = self.ok("clients", "get", "acme")
        self.assertRegex(out, r"name:\s+Acme Corp")
        self.assertEqual(json.loads(self.ok("clients", "get", "acme", "--json")),
                         h.ok("GET", "/v1/clients/acme", "audit"))

        rows = self.table(self.ok("contacts", "list", "acme"))
        self.assertEqual(rows[0][:3], ["ID", "NAME", "ROLES"])
        dana = [r for r in rows if r[0] == "dana"][0]
        self.assertIn("executive,board", dana)
        self.assertIn("22:00-07:00", dana)
        self.assertIn("email,sms", dana)
        out = self.ok("contacts", "get", "acme", "lee")
        self.assertRegex(out, r"email:\s+lee@acme.example")
        stored = h.ok("GET", "/v1/clients/acme/contacts/dana", "audit")
        self.assertEqual(stored["quiet_hours"], {"start": "22:00", "end": "07:00"})
        self.assertEqual(stored["roles"], ["executive", "board"])
        self.assertEqual(stored["channels"], ["email", "sms"])

        rows = self.table(self.ok("endpoints", "list", "acme"))
        self.assertEqual(rows[0], ["ID", "TYPE", "URL", "ENABLED"])
        self.assertEqual({r[0]: r[1] for r in rows[1:]}, {"siem": "webhook", "soc-slack": "slack"})
        self.assertNotIn("XXXXSECRET", self.ok("endpoints", "list", "acme"))

        plan = json.loads(self.ok("plan", "get", "acme"))
        self.assertEqual([r["id"] for r in plan["rules"]], ["contain-people", "contain-rooms"])
        self.assertEqual(plan["version"], 1)
        self.assertEqual(json.loads(self.ok("plan", "get", "acme", "--json"))["version"], 1)

        out = self.ok("plan", "preview", "acme", "--phase", "containment", "--severity", "high",
                      "--at", "2026-12-04T10:00:00Z")
        lines = out.splitlines()
        header = [l for l in lines if l.startswith("RULE")][0]
        self.assertEqual(re.split(r"\s{2,}", header),
                         ["RULE", "WHO", "ROLE", "CHANNEL", "SEND_AT", "DEFERRED", "REPEAT"])
        preview = h.ok("POST", "/v1/clients/acme/plan/preview", "audit",
                       {"phase": "containment", "severity": "high",
                        "at": "2026-12-04T10:00:00Z"})
        rows = [l for l in lines if l.startswith("contain-")]
        self.assertEqual(len(rows), len(preview["messages"]))
        self.assertTrue(any("dana (Dana Lee)" in r and "sms" in r and "1h" in r for r in rows),
                        out)
        self.assertTrue(any("soc-slack (endpoint)" in r for r in rows), out)
        self.assertIn("escalation of rule contain-people after 15m", out)
        self.assertIn("warning:", out)
        self.assertEqual(json.loads(self.ok("plan", "preview", "acme", "--phase", "containment",
                                            "--severity", "high", "--at",
                                            "2026-12-04T10:00:00Z", "--json")), preview)

        # Deletes.
        self.assertIn("deleted contact lee of acme", self.ok("contacts", "delete", "acme", "lee"))
        self.assertIn("deleted endpoint soc-slack of acme",
                      self.ok("endpoints", "delete", "acme", "soc-slack"))
        self.assertEqual(h.request("GET", "/v1/clients/acme/contacts/lee", "audit").status, 404)
        # Long cells are cut with an ellipsis; --json keeps the whole value.
        long_name = "Beta " + "Ünïcödé " * 10
        self.ok("clients", "put", "beta", "--name", long_name)
        rows = self.table(self.ok("clients", "list"))
        beta = [r for r in rows if r[0] == "beta"][0]
        self.assertEqual(len(beta[1]), 40)
        self.assertTrue(beta[1].endswith("…"), beta)
        self.assertTrue(long_name.startswith(beta[1][:-1]))
        listed = json.loads(self.ok("clients", "list", "--json"))
        self.assertIn(long_name, [c["name"] for c in listed["items"]])
        self.assertEqual(self.ok("clients", "delete", "beta", "--json"), "")
        self.ok("clients", "put", "beta", "--name", "Beta")
        self.assertIn("deleted client beta", self.ok("clients", "delete", "beta"))
        code, out, err = self.cli("clients", "get", "beta")
        self.assertEqual(code, 1, out + err)
        self.assertIn("404 not_found", err)

    def test_events_deliveries_incident(self):
        h = self.start(delivery=FAST)
        self.setup_with_cli(SIMPLE_PLAN)

        # Flags; the event id is generated and printed.
        out = self.ok("event", "send", "--client", "acme", "--incident", "INC-42", "--phase",
                      "containment", "--severity", "critical", "--title", "Ransomware on FS01",
                      "--summary", "FS01 isolated", "--detail", "host=FS01", "--detail",
                      "site=Berlin=HQ", "--occurred-at", "2026-12-04T10:00:00Z", token="ingest")
        m = re.match(r"accepted (evt-[0-9a-f]+) \(INC-42\): (\d+) messages\n", out)
        self.assertTrue(m, out)
        event_id, count = m.group(1), int(m.group(2))
        # dana: email and sms; lee: email; two rooms.
        self.assertEqual(count, 5)
        items = h.wait_deliveries(5, client="acme")
        self.assertEqual({d["event_id"] for d in items}, {event_id})

        # The same id again: a duplicate, nothing new.
        out = self.ok("event", "send", "--client", "acme", "--incident", "INC-42", "--phase",
                      "containment", "--severity", "critical", "--event-id", event_id,
                      token="ingest")
        self.assertIn(f"duplicate {event_id} (INC-42)", out)
        self.assertEqual(len(h.deliveries(client="acme")), 5)

        # From a file, and from standard input.
        body = {"event_id": "evt-file-1", "client": "acme",
                "incident": {"id": "INC-42", "severity": "critical"}, "phase": "eradication",
                "occurred_at": "2026-12-04T11:00:00Z", "summary": "FS01 reimaged"}
        out = self.ok("event", "send", "--file", self.write("event.json", body), token="ingest")
        self.assertIn("accepted evt-file-1 (INC-42): 5 messages", out)
        # Let eradication's messages go out first: moving on to recovery cancels whatever of
        # the previous phase is still pending.
        items = h.wait_deliveries(10, client="acme")
        body.update(event_id="evt-stdin-1", phase="recovery", occurred_at="2026-12-04T12:00:00Z")
        code, out, err = self.cli("event", "send", "--file", "-", "--json", token="ingest",
                                     stdin=json.dumps(body))
        self.assertEqual(code, 0, out + err)
        self.assertEqual(json.loads(out), {"event_id": "evt-stdin-1", "incident": "INC-42",
                                           "messages": 0, "duplicate": False})

        # deliveries list: a table; --all follows the cursors; --json is the API's answer.
        rows = self.table(self.ok("deliveries", "list", "--client", "acme", "--limit", "500"))
        self.assertEqual(rows[0], ["ID", "CLIENT", "INCIDENT", "PHASE", "TO", "CHANNEL",
                                   "STATUS", "ATTEMPTS", "CREATED_AT"])
        self.assertEqual(sorted(r[0] for r in rows[1:]), sorted(d["id"] for d in items))
        self.assertTrue(all(r[6] == "delivered" for r in rows[1:]), rows)
        code, out, err = self.cli("deliveries", "list", "--client", "acme", "--limit", "3")
        self.assertEqual(len(self.table(out)), 4)
        self.assertIn("--cursor", err)
        rows = self.table(self.ok("deliveries", "list", "--client", "acme", "--limit", "3",
                                  "--all"))
        self.assertEqual(len(rows), 11)
        listed = json.loads(self.ok("deliveries", "list", "--client", "acme", "--limit", "4",
                                    "--all", "--json"))
        self.assertEqual([d["id"] for d in listed["items"]], [d["id"] for d in items])
        page = json.loads(self.ok("deliveries", "list", "--client", "acme", "--limit", "4",
                                  "--json"))
        self.assertEqual(len(page["items"]), 4)
        self.assertTrue(page["next_cursor"])
        rows = self.table(self.ok("deliveries", "list", "--client", "acme", "--channel", "sms"))
        self.assertEqual({r[5] for r in rows[1:]}, {"sms"})
        self.assertEqual({r[4] for r in rows[1:]}, {"dana"})

        # deliveries show: the item, the attempts, the content.
        email = [d for d in items if d["channel"] == "email" and d["contact"] == "dana"][0]
        out = self.ok("deliveries", "show", email["id"])
        self.assertRegex(out, rf"id:\s+{email['id']}")
        self.assertIn("attempts:\n", out)
        self.assertRegex(out, r"\n1\s+\S+\s+\d+\s+delivered\s+250")
        self.assertIn("content:\n", out)
        self.assertRegex(out, r"address:\s+dana@acme.example")
        self.assertEqual(json.loads(self.ok("deliveries", "show", email["id"], "--json"))["id"],
                         email["id"])

        # incidents show: the header and the timeline.
        out = self.ok("incidents", "show", "INC-42", "--client", "acme")
        self.assertRegex(out, r"phase:\s+recovery")
        self.assertRegex(out, r"title:\s+Ransomware on FS01")
        self.assertIn("timeline:\n", out)
        self.assertRegex(out, rf"event\s+containment \(critical\) {event_id}: 5 messages")
        self.assertIn("message.delivered", out)
        incident = json.loads(self.ok("incidents", "show", "INC-42", "--client", "acme",
                                      "--json"))
        self.assertEqual(incident["id"], "INC-42")

        # The details made it, as strings; a value may hold '='.
        detail = h.ok("GET", f"/v1/deliveries/{email['id']}", "audit")
        self.assertEqual(detail["event_id"], event_id)

    def test_retry(self):
        h = self.start(hooks={"status": 400}, delivery=FAST)
        self.setup_acme(h, people=False, slack=False, webhook=True)
        self.ok("event", "send", "--client", "acme", "--incident", "INC-7", "--phase",
                "containment", "--severity", "high")
        [item] = h.wait_deliveries(1, status="failed", client="acme")
        rows = self.table(self.ok("deliveries", "list", "--status", "failed"))
        self.assertEqual([r[0] for r in rows[1:]], [item["id"]])
        out = self.ok("deliveries", "show", item["id"])
        self.assertRegex(out, r"\n1\s+\S+\s+\d+\s+permanent\s+400")
        code, out, err = self.cli("deliveries", "retry", item["id"], token="audit")
        self.assertEqual(code, 1, out + err)
        self.assertIn("403", err)
        out = self.ok("deliveries", "retry", item["id"], token="admin")
        self.assertIn(f"retrying {item['id']}", out)
        wait_for(lambda: h.ok("GET", f"/v1/deliveries/{item['id']}", "audit")["attempts"] == 2,
                 message="the second attempt")
        h.wait_deliveries(1, status="failed", client="acme")
        code, out, err = self.cli("deliveries", "retry", "msg_nope", token="admin")
        self.assertEqual(code, 1, out + err)
        self.assertIn("404 not_found", err)

    def audit_total(self, h):
        items, cursor = [], None
        while True:
            q = {"limit": 500}
            if cursor:
                q["cursor"] = cursor
            page = h.ok("GET", "/v1/audit?" + urllib.parse.urlencode(q), "audit")
            items += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return items

    def test_audit(self):
        h = self.start()
        self.setup_with_cli(SIMPLE_PLAN)
        self.ok("event", "send", "--client", "acme", "--incident", "INC-1", "--phase",
                "identification", "--severity", "low", "--summary", 'a "quoted", multi\nline')
        records = self.audit_total(h)
        self.assertGreaterEqual(len(records), 8)

        rows = self.table(self.ok("audit", "list", "--all", "--limit", "3", token="audit"))
        self.assertEqual(rows[0], ["SEQ", "AT", "KIND", "ACTOR", "CLIENT", "SUBJECT"])
        self.assertEqual([int(r[0]) for r in rows[1:]], [r["seq"] for r in records])
        rows = self.table(self.ok("audit", "list", "--kind", "contact.put"))
        self.assertEqual([r[5] for r in rows[1:]], ["dana", "lee"])
        self.assertEqual({r[3] for r in rows[1:]}, {"admin"})
        page = json.loads(self.ok("audit", "list", "--limit", "2", "--json"))
        self.assertEqual(page["items"], records[:2])

        # CSV, streamed from GET /v1/audit/export.
        out = self.ok("audit", "export", "--format", "csv", "--output", self.path("audit.csv"),
                      token="audit")
        self.assertIn(f"exported {len(records)} audit records", out)
        with open(self.path("audit.csv"), newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        self.assertEqual(rows[0], ["seq", "at", "kind", "actor", "client", "subject", "data",
                                   "prev_hash", "hash"])
        self.assertEqual(len(rows) - 1, len(records))
        for row, rec in zip(rows[1:], records):
            self.assertEqual(int(row[0]), rec["seq"])
            self.assertEqual(row[1:6], [rec["at"], rec["kind"], rec["actor"], rec["client"],
                                        rec["subject"]])
            self.assertEqual(json.loads(row[6]), rec["data"])
            self.assertEqual(row[8], rec["hash"])
        self.assertFalse(os.path.exists(self.path("audit.csv.partial")))

        # JSON lines on standard output.
        out = self.ok("audit", "export", "--format", "jsonl", token="audit")
        lines = [json.loads(l) for l in out.splitlines()]
        self.assertEqual([{k: v for k, v in l.items() if k != "prev_hash"} for l in lines],
                         records)
        self.assertEqual([l["prev_hash"] for l in lines[1:]], [r["hash"] for r in records[:-1]])
        code, out, err = self.cli("audit", "export", "--format", "xml")
        self.assertEqual(code, 2, out + err)

        # verify through the API; offline verify stays as it was.
        out = self.ok("audit", "verify", token="audit")
        self.assertRegex(out, rf"audit chain ok \({len(records)} records\)")
        verify = json.loads(self.ok("audit", "verify", "--json", token="audit"))
        self.assertIs(verify["ok"], True)

    def test_errors(self):
        h = self.start()
        # Wrong token: the API's 401.
        code, out, err = self.cli("clients", "list", token="tok-wrong")
        self.assertEqual(code, 1, out + err)
        self.assertIn("401", err)
        self.assertIn("unauthorized", err)
        # Missing token: a usage error that says so, nothing sent.
        code, out, err = self.cli("clients", "list", token=None)
        self.assertEqual(code, 2, out + err)
        self.assertIn("HERALD_TOKEN", err)
        # Daemon down: exit 3, naming the URL.
        url = f"http://127.0.0.1:{closed_port()}"
        code, out, err = self.cli("clients", "list", url=url)
        self.assertEqual(code, 3, out + err)
        self.assertIn(f"cannot connect to {url}", err)
        code, out, err = self.cli("event", "send", "--client", "acme", "--incident", "I",
                                     "--phase", "containment", "--severity", "low", url=url)
        self.assertEqual(code, 3, out + err)
        # A rule broken: the API's code, message and field.
        h.ok("PUT", "/v1/clients/acme", "admin", {"name": "Acme"})
        code, out, err = self.cli("event", "send", "--client", "acme", "--incident", "INC-1",
                                     "--phase", "contianment", "--severity", "low")
        self.assertEqual(code, 1, out + err)
        self.assertRegex(err, r"herald: 422 invalid_phase: .*contianment.*\(field phase\)")
        code, out, err = self.cli("plan", "preview", "acme", "--phase", "containment",
                                     "--severity", "huge")
        self.assertEqual(code, 1, out + err)
        self.assertIn("422 invalid_severity", err)
        # Usage errors: exit 2.
        for args in (["event", "send", "--client", "acme"],
                     ["event", "send", "--file", self.path("missing.json")],
                     ["contacts", "put", "acme", "x", "--name", "X", "--quiet-hours", "late"],
                     ["clients", "put", "acme"],
                     ["clients"],
                     ["deliveries", "frobnicate"]):
            with self.subTest(args=args):
                code, out, err = self.cli(*args)
                self.assertEqual(code, 2, out + err)
        code, out, err = self.cli("event", "send", "--client", "acme")
        self.assertIn("--incident", err)
        # Every client command explains itself, with an example.
        for args in (["event", "send"], ["clients", "put"], ["contacts", "put"],
                     ["endpoints", "put"], ["plan", "preview"], ["deliveries", "list"],
                     ["deliveries", "show"], ["incidents", "show"], ["audit", "export"],
                     ["audit", "list"], ["audit", "verify"]):
            with self.subTest(help=args):
                code, out, err = self.cli(*args, "--help")
                self.assertEqual(code, 0, out + err)
                self.assertIn("Example: herald " + " ".join(args), out)

    def test_docs_tour(self):
        """Every ```sh block of docs/cli.md, in order, against a real daemon."""
        h = self.start(delivery=FAST)
        with open(DOC, encoding="utf-8") as f:
            blocks = re.findall(r"```sh\n(.*?)```", f.read(), re.S)
        self.assertGreaterEqual(len(blocks), 5)
        script = "\n".join(blocks)
        script = (script.replace("http://127.0.0.1:8080", f"http://127.0.0.1:{h.port}")
                  .replace("http://127.0.0.1:8025", self.hooks.base)
                  .replace("demo-token", TOKENS["all"]))
        env = dict(os.environ, PATH=os.path.dirname(HERALD_BIN) + ":" + os.environ["PATH"])
        p = subprocess.run(["bash", "-euo", "pipefail", "-x", "-c", script], cwd=self.workdir,
                           env=env, capture_output=True, text=True, timeout=120 * SLOW)
        self.assert_no_sanitizer_report(p.stdout + p.stderr)
        if os.environ.get("HERALD_SHOW_TOUR"):
            print(p.stderr + p.stdout)
        self.assertEqual(p.returncode, 0, f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        self.assertEqual(len(h.deliveries(client="acme", channel="webhook")), 1)
        # Deliveries may still append records after the export ran (slow builds): the export
        # must be exactly the trail as it stood then, i.e. a prefix of the trail now.
        with open(self.path("audit.csv"), newline="", encoding="utf-8") as f:
            exported = [int(row["seq"]) for row in csv.DictReader(f)]
        trail = [item["seq"] for item in self.audit_total(h)]
        self.assertGreater(len(exported), 0)
        self.assertEqual(exported, trail[:len(exported)])
        with open(self.path("stored-plan.json")) as f:
            self.assertEqual(json.load(f)["version"], 1)


if __name__ == "__main__":
    unittest.main()
