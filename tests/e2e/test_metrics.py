"""/metrics: the queue by status, the age of the oldest due message and the breakers' states
appear and move with what the dispatcher does."""

import re
import time
import unittest

from harness import SLOW, HeraldTestCase, event, wait_for, write_config


def metric(text, name, labels=""):
    pattern = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else "") + r" (\S+)"
    m = re.search(r"^" + pattern + r"$", text, re.M)
    return float(m.group(1)) if m else None


class MetricsTest(HeraldTestCase):

    def scrape(self):
        r = self.h.request("GET", "/metrics")
        self.assertEqual(r.status, 200)
        return r.body

    def test_queue_and_oldest_due_move(self):
        # One attempt at a time, each answered after 1 s: the rest of the queue waits, due.
        self.mail = self.start_mail()
        self.hooks = self.start_hooks(delay=1)
        config = write_config(self.workdir, self.mail.port, self.hooks.port,
                              delivery={"concurrency": 1})
        self.h = self.start_herald(config)
        self.setup_acme(self.h, people=False, slack=True, webhook=True,
                        plan={"rules": [{"id": "rooms", "phases": ["containment"],
                                         "min_severity": "low", "endpoints": ["siem"],
                                         "delay": "0s"}]})
        text = self.scrape()
        self.assertEqual(metric(text, "herald_queue_depth"), 0)
        self.assertEqual(metric(text, "herald_oldest_due_seconds"), 0)
        self.assertIn("# TYPE herald_oldest_due_seconds gauge", text)
        self.assertIn("# TYPE herald_breaker_state gauge", text)

        for n in range(4):
            self.h.ok("POST", "/v1/events", "ingest", event(f"evt-m{n}", incident=f"INC-{n}"))

        def waiting():
            t = self.scrape()
            due = metric(t, "herald_queue_due", 'status="scheduled"')
            return t if due and due >= 2 else None

        first = wait_for(waiting, 10 * SLOW, "messages waiting, due")
        self.assertEqual(metric(first, "herald_queue_depth"),
                         metric(first, "herald_queue_due", 'status="scheduled"') +
                         metric(first, "herald_queue_due", 'status="retrying"'))
        age1 = metric(first, "herald_oldest_due_seconds")
        time.sleep(0.3)
        age2 = metric(self.scrape(), "herald_oldest_due_seconds")
        self.assertGreater(age2, age1, "the oldest due message ages while it waits")

        self.h.wait_deliveries(4, timeout=30 * SLOW)
        text = self.scrape()
        self.assertEqual(metric(text, "herald_queue_depth"), 0)
        self.assertEqual(metric(text, "herald_oldest_due_seconds"), 0)
        dest = f'destination="127.0.0.1:{self.hooks.port}"'
        self.assertEqual(metric(text, "herald_breaker_state", dest + ',state="closed"'), 1)
        self.assertEqual(metric(text, "herald_breaker_state", dest + ',state="open"'), 0)
        self.assertEqual(metric(text, "herald_messages", 'channel="webhook",status="delivered"'), 4)

    def test_breaker_state_opens(self):
        self.mail = self.start_mail()
        self.hooks = self.start_hooks(fail_first=1000, fail_status=503)
        config = write_config(self.workdir, self.mail.port, self.hooks.port,
                              delivery={"breaker_threshold": 2, "breaker_cool_down": "1m",
                                        "max_backoff": "1s", "attempt_timeout": "5s"})
        self.h = self.start_herald(config)
        self.setup_acme(self.h, people=False, slack=False, webhook=True)
        self.h.ok("POST", "/v1/events", "ingest", event("evt-b1"))
        dest = f'destination="127.0.0.1:{self.hooks.port}"'

        def opened():
            t = self.scrape()
            return t if metric(t, "herald_breaker_state", dest + ',state="open"') == 1 else None

        text = wait_for(opened, 20 * SLOW, "the breaker to open")
        self.assertEqual(metric(text, "herald_breaker_state", dest + ',state="closed"'), 0)
        self.assertEqual(metric(text, "herald_breaker_state", dest + ',state="half_open"'), 0)
        self.assertEqual(metric(text, "herald_breaker_open", dest), 1)


if __name__ == "__main__":
    unittest.main()
