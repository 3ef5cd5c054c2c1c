"""Durability: queued messages survive a graceful stop and a crash (kill -9)."""

import json
import unittest

from harness import (HeraldTestCase, HoldingReceiver, MailCatcher, WebhookReceiver, closed_port,
                     event, wait_for, write_config)

SMS_PATH = "/2010-04-01/Accounts/ACtest/Messages.json"


class RestartTest(HeraldTestCase):

    def test_queued_email_survives_restart(self):
        mail_port = closed_port()  # no SMTP server yet
        self.hooks = self.start_hooks()
        config = write_config(self.workdir, mail_port, self.hooks.port,
                              delivery={"max_backoff": "1s"})
        h = self.start_herald(config)
        h.ok("PUT", "/v1/clients/acme", "admin", {"name": "Acme Corp"})
        h.ok("PUT", "/v1/clients/acme/contacts/lee", "admin",
             {"name": "Lee Park", "roles": ["legal"], "email": "lee@acme.example",
              "channels": ["email"]})
        h.ok("PUT", "/v1/clients/acme/plan", "admin", {"rules": [
            {"id": "legal", "phases": ["containment"], "roles": ["legal"],
             "channels": ["email"], "quiet_hours": "ignore"}]})
        r = h.request("POST", "/v1/events", "ingest", event("evt-1"))
        self.assertEqual(r.status, 202, r.body)

        def retrying():
            items = h.deliveries(client="acme")
            return items if items and items[0]["status"] == "retrying" and \
                items[0]["attempts"] >= 1 else None

        [before] = wait_for(retrying, message="the email to be retrying")
        self.assertIn("SMTP", before["last_error"] or "")
        detail = h.ok("GET", f"/v1/deliveries/{before['id']}", "audit")
        self.assertEqual(detail["attempts_log"][0]["outcome"], "retryable")
        self.stop_herald(h)

        self.mail = MailCatcher(self.workdir, port=mail_port)
        self.addCleanup(self.mail.stop)
        h2 = self.start_herald(config)
        [after] = h2.wait_deliveries(1, client="acme")
        self.assertEqual(after["id"], before["id"])
        self.assertGreaterEqual(after["attempts"], 2)
        [(record, msg)] = wait_for(lambda: self.mail.emails(), message="the email")
        self.assertEqual(record["rcpt_tos"], ["lee@acme.example"])
        self.assertEqual(msg["Message-ID"], f"<{before['id']}@msp.example>")
        outcomes = [a["outcome"] for a in
                    h2.ok("GET", f"/v1/deliveries/{after['id']}", "audit")["attempts_log"]]
        self.assertEqual(outcomes[-1], "delivered")
        self.assertTrue(all(o == "retryable" for o in outcomes[:-1]), outcomes)

    def test_kill_9_after_accept(self):
        h = self.start_stack(delivery={"max_backoff": "1s"})
        self.setup_acme(h, webhook_secret=None)
        # Three events, five messages each, then a crash while they are being sent.
        for n in range(3):
            r = h.request("POST", "/v1/events", "ingest",
                          event(f"evt-{n}", incident=f"INC-{n}"))
            self.assertEqual(r.status, 202, r.body)
            self.assertEqual(r.body["messages"], 5)
        h.kill()

        h2 = self.start_herald(self.config)
        items = h2.wait_deliveries(15, client="acme")
        ids = {d["id"] for d in items}
        self.assertEqual(len(ids), 15)
        # The events were not lost nor doubled by the crash.
        for n in range(3):
            again = h2.request("POST", "/v1/events", "ingest",
                               event(f"evt-{n}", incident=f"INC-{n}"))
            self.assertEqual(again.status, 200, again.body)
            self.assertIs(again.body["duplicate"], True)

        by_channel = {}
        for d in items:
            by_channel.setdefault(d["channel"], set()).add(d["id"])

        def arrived():
            mail_ids = {m["Message-ID"][1:].split("@")[0] for _, m in self.mail.emails()}
            hook_ids = {r["headers"]["webhook-id"] for r in self.hooks.requests("/hooks/siem")}
            sms = self.hooks.requests(SMS_PATH)
            slack = [r for r in self.hooks.requests() if r["path"].startswith("/slack/")]
            ok = (mail_ids >= by_channel["email"] and hook_ids >= by_channel["webhook"]
                  and len(sms) >= 3 and len(slack) >= 3)
            return (mail_ids, hook_ids, sms, slack) if ok else None

        mail_ids, hook_ids, sms, slack = wait_for(arrived, message="every message to arrive")
        # At least once, and never under an id herald does not know.
        self.assertEqual(mail_ids, by_channel["email"])
        self.assertEqual(hook_ids, by_channel["webhook"])
        self.assertEqual({json.loads(r["body"])["incident"]["id"] for r in
                          self.hooks.requests("/hooks/siem")}, {"INC-0", "INC-1", "INC-2"})
        self.assertIs(h2.ok("GET", "/v1/audit/verify", "audit")["ok"], True)

    def test_sigterm_during_a_hanging_attempt(self):
        """A receiver that never answers must not stop a graceful shutdown, nor lose the
        message: it is sent again, with the same id, after the restart."""
        receiver = HoldingReceiver(self, answer_held=False)
        receiver.hold.set()
        seen = receiver.seen

        h = self.start_stack(delivery={"attempt_timeout": "60s", "max_backoff": "1s"})
        h.ok("PUT", "/v1/clients/acme", "admin", {"name": "Acme Corp"})
        h.ok("PUT", "/v1/clients/acme/endpoints/slow", "admin",
             {"type": "webhook", "url": receiver.url("/slow"),
              "secret": "whsec_" + "A" * 44})
        h.ok("PUT", "/v1/clients/acme/plan", "admin", {"rules": [
            {"id": "rooms", "phases": ["containment"], "endpoints": ["slow"]}]})
        r = h.request("POST", "/v1/events", "ingest", event("evt-1"))
        self.assertEqual(r.status, 202, r.body)
        wait_for(lambda: seen, message="the first request to hang")
        [item] = h.deliveries(client="acme")
        self.assertEqual(item["status"], "sending")
        self.stop_herald(h)  # exit 0 within 15 s although the attempt is still open

        receiver.hold.clear()
        receiver.release.set()
        h2 = self.start_herald(self.config)
        [after] = h2.wait_deliveries(1, client="acme")
        self.assertEqual(after["id"], item["id"])
        wait_for(lambda: len(seen) >= 2, message="the second request")
        self.assertEqual({wid for wid, _ in seen}, {item["id"]})
        log = h2.ok("GET", f"/v1/deliveries/{item['id']}", "audit")["attempts_log"]
        self.assertEqual(log[-1]["outcome"], "delivered")
        self.assertGreaterEqual(len(log), 2)


if __name__ == "__main__":
    unittest.main()
