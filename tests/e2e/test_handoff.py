"""The hand-over: a message due at once is claimed in its event's own commit and sent without a
claim commit of its own (one fsync between the POST and the send). It must still be durable:
killed while it is in flight, herald sends it again, with the same id, after the restart. And it
never overtakes: while its destination is busy, a new message waits for the dispatcher's claim,
unclaimed (not claimed only to be put back).
"""

import json
import re
import unittest

from harness import SLOW, HeraldTestCase, HoldingReceiver, event, wait_for


def metric(h, name):
    text = h.request("GET", "/metrics").body
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def incidents(receiver):
    """The incident of each request the receiver saw, in arrival order."""
    return [json.loads(body).get("incident", {}).get("id") for _, body in receiver.seen]


class HandoffTest(HeraldTestCase):
    def setup(self, receiver, delivery=None):
        h = self.start_stack(delivery=delivery)
        h.ok("PUT", "/v1/clients/acme", "admin", {"name": "Acme Corp"})
        h.ok("PUT", "/v1/clients/acme/endpoints/siem", "admin",
             {"type": "webhook", "url": receiver.url(), "secret": "whsec_" + "A" * 44})
        h.ok("PUT", "/v1/clients/acme/plan", "admin", {"rules": [
            {"id": "rooms", "phases": ["containment"], "endpoints": ["siem"]}]})
        return h

    def test_due_at_once_sent_without_a_claim_commit(self):
        receiver = HoldingReceiver(self)
        h = self.setup(receiver)
        commits = metric(h, "herald_store_commits_total")
        r = h.ok("POST", "/v1/events", "ingest", event("evt-1"))
        self.assertEqual(r["messages"], 1)
        (d,) = h.wait_deliveries(1, client="acme")
        self.assertEqual(d["attempts"], 1)
        self.assertEqual([i for i, _ in receiver.seen], [d["id"]])
        self.assertEqual(metric(h, "herald_handed_over_total"), 1)
        # The event's commit (with the claim), then the outcome's: no claim commit between.
        self.assertEqual(metric(h, "herald_store_commits_total") - commits, 2)
        detail = h.ok("GET", f"/v1/deliveries/{d['id']}", "audit")
        self.assertEqual([a["outcome"] for a in detail["attempts_log"]], ["delivered"])
        self.assertIs(h.ok("GET", "/v1/audit/verify", "audit")["ok"], True)

    def test_busy_destination_is_not_overtaken_nor_claimed_to_be_put_back(self):
        receiver = HoldingReceiver(self)
        receiver.hold.set()
        h = self.setup(receiver, delivery={"destination_concurrency": 1,
                                           "attempt_timeout": "60s"})
        h.ok("POST", "/v1/events", "ingest", event("evt-1", incident="INC-1"))
        wait_for(lambda: receiver.seen, message="the first request to arrive")
        # The endpoint's one slot is taken: the next message is not handed over, and waits in
        # the queue, unclaimed.
        h.ok("POST", "/v1/events", "ingest", event("evt-2", incident="INC-2"))
        waiting = wait_for(lambda: [d for d in h.deliveries(client="acme")
                                    if d["status"] == "scheduled"], message="a queued message")
        self.assertEqual(len(waiting), 1)
        self.assertEqual(metric(h, "herald_handed_over_total"), 1)
        self.assertEqual(len(receiver.seen), 1)
        receiver.release.set()
        items = h.wait_deliveries(2, client="acme", timeout=30 * SLOW)
        self.assertEqual(incidents(receiver), ["INC-1", "INC-2"])
        self.assertEqual(sorted(d["attempts"] for d in items), [1, 1])
        self.assertEqual(metric(h, "herald_deferred_total"), 0)

    def test_killed_while_in_flight_it_is_sent_again_with_the_same_id(self):
        receiver = HoldingReceiver(self)
        receiver.hold.set()
        h = self.setup(receiver, delivery={"attempt_timeout": "60s", "max_backoff": "1s"})
        h.ok("POST", "/v1/events", "ingest", event("evt-1"))
        wait_for(lambda: receiver.seen, message="the first request to arrive")
        self.assertEqual(metric(h, "herald_handed_over_total"), 1)
        h.kill()
        receiver.hold.clear()
        h2 = self.start_herald(self.config, log_name="herald2.log")
        (d,) = h2.wait_deliveries(1, client="acme", timeout=30 * SLOW)
        self.assertEqual([i for i, _ in receiver.seen], [d["id"], d["id"]])
        self.assertIn("were in flight when herald last stopped", h2.log_text())
        self.assertIs(h2.ok("GET", "/v1/audit/verify", "audit")["ok"], True)


if __name__ == "__main__":
    unittest.main()
