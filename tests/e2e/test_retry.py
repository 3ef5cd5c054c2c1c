"""Retries: transient failures retried until delivered, permanent ones failed, manual retry."""

import datetime
import unittest

from harness import SLOW, HeraldTestCase, event, wait_for, write_config

FAST = {"max_backoff": "2s", "attempt_timeout": "10s"}


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


class RetryTest(HeraldTestCase):

    def post(self, h, body):
        r = h.request("POST", "/v1/events", "ingest", body)
        self.assertEqual(r.status, 202, r.body)
        return r.body

    def test_transient_503_then_delivered(self):
        h = self.start_stack(hooks={"fail_first": 2, "fail_status": 503, "retry_after": 1},
                             delivery=FAST)
        self.setup_acme(h, people=False, slack=False, webhook=True)
        self.assertEqual(self.post(h, event("evt-1"))["messages"], 1)
        [item] = h.wait_deliveries(1, client="acme", timeout=60 * SLOW)
        detail = h.ok("GET", f"/v1/deliveries/{item['id']}", "audit")
        self.assertEqual(detail["attempts"], 3)
        log = detail["attempts_log"]
        self.assertEqual([(a["number"], a["outcome"], a["status_code"]) for a in log],
                         [(1, "retryable", 503), (2, "retryable", 503), (3, "delivered", 200)])
        for a in log[:2]:
            self.assertTrue(a["error"], a)
        # Retry-After: 1 is honoured: no retry came sooner than a second after the failure.
        starts = [datetime.datetime.fromisoformat(a["started_at"].replace("Z", "+00:00"))
                  for a in log]
        for earlier, later in zip(starts, starts[1:]):
            self.assertGreaterEqual((later - earlier).total_seconds(), 1.0, log)
        requests = self.hooks.requests("/hooks/siem")
        self.assertEqual(len(requests), 3)
        # The message id is the idempotency key: identical on every retry.
        self.assertEqual({r["headers"]["webhook-id"] for r in requests}, {item["id"]})
        self.assertEqual(len({r["body"] for r in requests}), 1)

    def test_default_schedule_retries_after_5s_across_a_restart(self):
        """The default schedule (Standard Webhooks): the second attempt comes about 5 s after
        the first, at the time stored with the message, even when herald restarts between."""
        h = self.start_stack(hooks={"fail_first": 1, "fail_status": 503})
        self.setup_acme(h, people=False, slack=False, webhook=True)
        self.post(h, event("evt-1"))
        [item] = wait_for(lambda: [d for d in h.deliveries(client="acme")
                                   if d["status"] == "retrying"], message="the first 503")
        first = h.ok("GET", f"/v1/deliveries/{item['id']}", "audit")
        self.assertEqual([(a["number"], a["status_code"]) for a in first["attempts_log"]],
                         [(1, 503)])
        started1 = parse_time(first["attempts_log"][0]["started_at"])
        due = parse_time(first["send_at"])
        # 5 s less up to 20 % jitter, counted from when the answer was recorded.
        self.assertGreaterEqual((due - started1).total_seconds(), 3.9, first)
        self.assertLessEqual((due - started1).total_seconds(), 5.5, first)
        [audit] = h.ok("GET", "/v1/audit?kind=delivery.attempt", "audit")["items"]
        self.assertEqual(audit["data"]["next_attempt_at"], first["send_at"])

        # Restart before it is due: the stored time is kept, neither reset nor hurried.
        self.stop_herald(h)
        h = self.herald = self.start_herald(self.config)
        restarted = datetime.datetime.now(datetime.timezone.utc)
        [done] = h.wait_deliveries(1, client="acme", timeout=30 * SLOW)
        log = h.ok("GET", f"/v1/deliveries/{done['id']}", "audit")["attempts_log"]
        self.assertEqual([(a["number"], a["outcome"], a["status_code"]) for a in log],
                         [(1, "retryable", 503), (2, "delivered", 200)])
        started2 = parse_time(log[1]["started_at"])
        gap = (started2 - started1).total_seconds()
        print(f"\nsecond attempt {gap:.2f}s after the first (restarted in between)", flush=True)
        self.assertGreaterEqual(gap, 3.9, log)
        self.assertGreaterEqual(started2, due, log)
        # Sent when due (or at once, if the restart itself took longer than that).
        self.assertLessEqual((started2 - max(due, restarted)).total_seconds(), 1.5 * SLOW, log)
        self.assertEqual(len(self.hooks.requests("/hooks/siem")), 2)

    def test_permanent_400_then_manual_retry(self):
        h = self.start_stack(hooks={"status": 400}, delivery=FAST)
        self.setup_acme(h, people=False, slack=False, webhook=True)
        self.post(h, event("evt-1"))
        [item] = h.wait_deliveries(1, status="failed", client="acme")
        detail = h.ok("GET", f"/v1/deliveries/{item['id']}", "audit")
        self.assertEqual(detail["attempts"], 1)
        self.assertEqual([(a["outcome"], a["status_code"]) for a in detail["attempts_log"]],
                         [("permanent", 400)])
        self.assertTrue(detail["last_error"])
        self.assertEqual(len(self.hooks.requests("/hooks/siem")), 1)

        # Only admin may retry; a failed delivery can be retried, anything else is a conflict.
        self.assertEqual(h.request("POST", f"/v1/deliveries/{item['id']}/retry", "audit").status,
                         403)
        r = h.request("POST", f"/v1/deliveries/{item['id']}/retry", "admin")
        self.assertEqual(r.status, 202, r.body)
        self.assertEqual(r.body["id"], item["id"])
        # Still refused by the receiver: failed again, after a second attempt.
        wait_for(lambda: h.ok("GET", f"/v1/deliveries/{item['id']}", "audit")["attempts"] == 2,
                 message="the second attempt")
        [again] = h.wait_deliveries(1, status="failed", client="acme")
        detail = h.ok("GET", f"/v1/deliveries/{item['id']}", "audit")
        self.assertEqual(detail["attempts"], 2)
        self.assertEqual([(a["number"], a["outcome"], a["status_code"])
                          for a in detail["attempts_log"]],
                         [(1, "permanent", 400), (2, "permanent", 400)])
        self.assertEqual(len(self.hooks.requests("/hooks/siem")), 2)
        audit = h.ok("GET", "/v1/audit?kind=delivery.retry", "audit")
        self.assertEqual([(a["kind"], a["actor"], a["subject"]) for a in audit["items"]],
                         [("delivery.retry", "admin", item["id"])])
        self.assertIs(h.ok("GET", "/v1/audit/verify", "audit")["ok"], True)

    def test_retry_of_a_delivered_message_conflicts(self):
        h = self.start_stack(delivery=FAST)
        self.setup_acme(h, people=False, slack=False, webhook=True)
        self.post(h, event("evt-1"))
        [item] = h.wait_deliveries(1, client="acme")
        r = h.request("POST", f"/v1/deliveries/{item['id']}/retry", "admin")
        self.assertEqual(r.status, 409, r.body)
        self.assertEqual(r.body["error"]["code"], "not_failed")
        self.assertEqual(h.request("POST", "/v1/deliveries/nope/retry", "admin").status, 404)
        self.assertEqual(h.ok("GET", f"/v1/deliveries/{item['id']}", "audit")["attempts"], 1)

    def test_smtp_550_fails_permanently(self):
        h = self.start_stack(mail={"reply_code": 550}, delivery=FAST)
        h.ok("PUT", "/v1/clients/acme", "admin", {"name": "Acme Corp"})
        h.ok("PUT", "/v1/clients/acme/contacts/lee", "admin",
             {"name": "Lee Park", "roles": ["legal"], "email": "lee@acme.example",
              "channels": ["email"]})
        h.ok("PUT", "/v1/clients/acme/plan", "admin", {"rules": [
            {"id": "legal", "phases": ["containment"], "roles": ["legal"],
             "channels": ["email"], "quiet_hours": "ignore"}]})
        self.post(h, event("evt-1"))
        [item] = h.wait_deliveries(1, status="failed", client="acme")
        self.assertEqual(item["channel"], "email")
        detail = h.ok("GET", f"/v1/deliveries/{item['id']}", "audit")
        self.assertEqual([(a["outcome"], a["status_code"]) for a in detail["attempts_log"]],
                         [("permanent", 550)])
        self.assertIn("550", detail["last_error"])
        self.assertEqual(self.mail.records(), [])
        self.assertIn("refused RCPT lee@acme.example with 550", self.mail.child.log_text())

    def test_retry_horizon_gives_up(self):
        """Transient failures past retry_horizon end as failed, naming the last error."""
        h = self.start_stack(mail={"reply_code": 451},
                             hooks={"fail_first": 1000, "fail_status": 503},
                             delivery={"max_backoff": "1s", "retry_horizon": "3s"})
        h.ok("PUT", "/v1/clients/acme", "admin", {"name": "Acme Corp"})
        h.ok("PUT", "/v1/clients/acme/contacts/lee", "admin",
             {"name": "Lee Park", "roles": ["legal"], "email": "lee@acme.example",
              "channels": ["email"]})
        h.ok("PUT", "/v1/clients/acme/endpoints/siem", "admin",
             {"type": "webhook", "url": f"{self.hooks.base}/hooks/siem"})
        h.ok("PUT", "/v1/clients/acme/plan", "admin", {"rules": [
            {"id": "all", "phases": ["containment"], "roles": ["legal"], "channels": ["email"],
             "endpoints": ["siem"], "quiet_hours": "ignore"}]})
        self.post(h, event("evt-1"))
        items = h.wait_deliveries(2, status="failed", client="acme", timeout=60 * SLOW)
        for d in items:
            detail = h.ok("GET", f"/v1/deliveries/{d['id']}", "audit")
            log = detail["attempts_log"]
            self.assertGreaterEqual(len(log), 2, log)
            self.assertEqual({a["outcome"] for a in log}, {"retryable"}, log)
            want = 451 if d["channel"] == "email" else 503
            self.assertEqual({a["status_code"] for a in log}, {want}, log)
            self.assertTrue(detail["last_error"].startswith("gave up after"), detail)
            self.assertIn(str(want), detail["last_error"])
        self.assertEqual(self.mail.records(), [])

    def test_private_address_refused_without_allow_private(self):
        """Endpoints are set through the API: loopback is refused unless the config allows it."""
        self.mail = self.start_mail()
        self.hooks = self.start_hooks()
        config = write_config(self.workdir, self.mail.port, self.hooks.port, delivery=FAST)
        with open(config) as f:
            text = f.read().replace('allow_private = ["127.0.0.0/8"]', "allow_private = []")
        with open(config, "w") as f:
            f.write(text)
        h = self.herald = self.start_herald(config)
        self.setup_acme(h, people=False, slack=True, webhook=True)
        # A URL spelled as a name that resolves to loopback is refused as well.
        h.ok("PUT", "/v1/clients/acme/endpoints/sneaky", "admin",
             {"type": "webhook", "url": f"http://localhost:{self.hooks.port}/hooks/sneaky"})
        h.ok("PUT", "/v1/clients/acme/plan", "admin", {"rules": [
            {"id": "rooms", "phases": ["containment"],
             "endpoints": ["soc-slack", "siem", "sneaky"]}]})
        self.post(h, event("evt-1"))

        def all_refused():
            items = h.deliveries(client="acme")
            return items if len(items) == 3 and all(
                d["status"] == "failed" and "allow_private" in (d["last_error"] or "")
                for d in items) else None

        # A refused destination fails at once, permanently (a policy, not a passing fault):
        # the operator widens allow_private and replays it if it was legitimate. Nothing
        # ever connects.
        items = wait_for(all_refused, message="3 refused deliveries")
        for d in items:
            self.assertEqual(d["attempts"], 1, d)
            self.assertRegex(d["last_error"], r"(127\.0\.0\.1|::1) is a loopback address")
        self.assertEqual(self.hooks.requests(), [])

if __name__ == "__main__":
    unittest.main()
