"""Fan-out: one event to many recipients on every channel, within small per-destination limits.

Every message arrives once and has exactly one attempt, recorded and audited; the limits hold
(no more SMS attempts at once than `server_concurrency`, no more attempts at all than
`concurrency`); and messages that wait for their server's or endpoint's slots wait in the
queue unclaimed: none is claimed only to be put back (herald_deferred_total{reason=
"concurrency"} stays 0, where the dispatcher used to claim, render and put back each email of
a fan-out many times over).
"""

import datetime
import re
import unittest

from harness import SLOW, HeraldTestCase, event, write_config

EMAIL, SMS, CHAT, WEBHOOK = 40, 40, 20, 20
CONCURRENCY, SERVER, ENDPOINT = 8, 2, 1
REPLY_DELAY = 0.05  # each HTTP answer (SMS, chat, webhook): attempts overlap measurably


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def max_overlap(intervals):
    """The most intervals [start, end) open at one instant."""
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


class FanoutTest(HeraldTestCase):
    def test_one_event_to_every_channel_within_small_limits(self):
        self.mail = self.start_mail()
        self.hooks = self.start_hooks(delay=REPLY_DELAY)
        config = write_config(
            self.workdir, self.mail.port, self.hooks.port,
            delivery={"concurrency": CONCURRENCY, "server_concurrency": SERVER,
                      "destination_concurrency": ENDPOINT},
            extra='[delivery.rate_limits]\nsms = "none"\nslack = "none"\n')
        h = self.start_herald(config)
        h.ok("PUT", "/v1/clients/acme", "admin", {"name": "Acme Corp"}, expect=201)
        for i in range(EMAIL):
            h.ok("PUT", f"/v1/clients/acme/contacts/mail{i:02d}", "admin",
                 {"name": f"Mail {i}", "roles": ["staff"], "email": f"p{i}@acme.example",
                  "timezone": "UTC", "channels": ["email"]}, expect=201)
        for i in range(SMS):
            h.ok("PUT", f"/v1/clients/acme/contacts/sms{i:02d}", "admin",
                 {"name": f"Sms {i}", "roles": ["staff"], "phone": f"+1555000{i:04d}",
                  "timezone": "UTC", "channels": ["sms"]}, expect=201)
        endpoints = []
        for i in range(CHAT):
            kind = ("slack", "teams", "mattermost", "discord", "googlechat")[i % 5]
            endpoints.append(f"chat{i:02d}")
            h.ok("PUT", f"/v1/clients/acme/endpoints/chat{i:02d}", "admin",
                 {"type": kind, "url": f"{self.hooks.base}/chat/{i:02d}"}, expect=201)
        for i in range(WEBHOOK):
            endpoints.append(f"hook{i:02d}")
            h.ok("PUT", f"/v1/clients/acme/endpoints/hook{i:02d}", "admin",
                 {"type": "webhook", "url": f"{self.hooks.base}/hooks/{i:02d}"}, expect=201)
        h.ok("PUT", "/v1/clients/acme/plan", "admin", {"rules": [
            {"id": "everyone", "phases": ["containment"], "min_severity": "low",
             "roles": ["staff"], "channels": ["email", "sms"], "endpoints": endpoints,
             "delay": "0s", "quiet_hours": "ignore"}]})

        total = EMAIL + SMS + CHAT + WEBHOOK
        r = h.ok("POST", "/v1/events", "ingest", event("evt-fan", severity="high"))
        self.assertEqual(r["messages"], total)
        items = h.wait_deliveries(total, client="acme", timeout=60 * SLOW)

        # Each message once, with one attempt.
        self.assertEqual(sorted(d["attempts"] for d in items), [1] * total)
        self.assertEqual(len({r["rcpt_tos"][0] for r in self.mail.records()}), EMAIL)
        self.assertEqual(len(self.mail.records()), EMAIL)
        requests = self.hooks.requests()
        self.assertEqual(len([q for q in requests if "/Messages.json" in q["path"]]), SMS)
        self.assertEqual(len([q for q in requests if q["path"].startswith("/chat/")]), CHAT)
        self.assertEqual(len([q for q in requests if q["path"].startswith("/hooks/")]), WEBHOOK)

        # The limits held: attempts' own records (started_at, duration) never overlap more.
        spans = {}
        for d in items:
            detail = h.ok("GET", f"/v1/deliveries/{d['id']}", "audit")
            (attempt,) = detail["attempts_log"]
            self.assertEqual(attempt["outcome"], "delivered", attempt)
            start = parse_time(attempt["started_at"])
            end = start + datetime.timedelta(milliseconds=attempt["duration_ms"])
            spans.setdefault(d["channel"], []).append((start, end))
        self.assertLessEqual(max_overlap(spans["sms"]), SERVER, "SMS attempts at once")
        self.assertLessEqual(max_overlap(spans["email"]), SERVER, "email attempts at once")
        self.assertLessEqual(max_overlap([s for v in spans.values() for s in v]), CONCURRENCY)
        # ...and they were used: SMS went two at a time, not one.
        self.assertEqual(max_overlap(spans["sms"]), SERVER, "SMS attempts at once")

        # Nothing was claimed only to be put back for want of a slot.
        metrics = h.request("GET", "/metrics").body
        deferred = re.findall(r'^herald_deferred_total\{reason="concurrency"\} (\d+)', metrics,
                              re.M)
        self.assertEqual(sum(int(n) for n in deferred), 0, deferred)

        # Every attempt audited (its content once, its outcome once), and the chain holds.
        for kind in ("delivery.attempt", "message.rendered"):
            records, cursor = [], None
            while True:
                q = f"/v1/audit?kind={kind}&limit=500" + (f"&cursor={cursor}" if cursor else "")
                page = h.ok("GET", q, "audit")
                records += page["items"]
                cursor = page.get("next_cursor")
                if not cursor:
                    break
            self.assertEqual(sorted(r["subject"] for r in records),
                             sorted(d["id"] for d in items), kind)
        self.assertIs(h.ok("GET", "/v1/audit/verify", "audit")["ok"], True)


if __name__ == "__main__":
    unittest.main()
