"""Delivery against misbehaving receivers: 410 Gone disables an endpoint, a dead endpoint does
not delay the others, the circuit breaker pauses a failing destination, and the default
Slack rate limit spaces messages to one webhook."""

import datetime
import re
import socket
import time
import unittest

from harness import SLOW, HeraldTestCase, closed_port, event, wait_for, write_config

FAST = {"max_backoff": "1s", "attempt_timeout": "10s"}


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


class DeliveryTest(HeraldTestCase):

    def post(self, h, body):
        r = h.request("POST", "/v1/events", "ingest", body)
        self.assertEqual(r.status, 202, r.body)
        return r.body

    def endpoints_plan(self, h, endpoints):
        h.ok("PUT", "/v1/clients/acme/plan", "admin", {"rules": [
            {"id": "rooms", "phases": ["containment", "eradication"], "endpoints": endpoints,
             "delay": "0s"}]})

    def put_webhook(self, h, name, url):
        h.ok("PUT", f"/v1/clients/acme/endpoints/{name}", "admin", {"type": "webhook", "url": url})

    def attempts(self, h, items):
        return sum(h.ok("GET", f"/v1/deliveries/{d['id']}", "audit")["attempts"] for d in items)

    def hanging_port(self):
        """A port that accepts connections (the kernel's backlog) and never answers."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.listen(128)
        self.addCleanup(s.close)
        return s.getsockname()[1]

    def test_410_gone_disables_the_endpoint_until_an_admin_enables_it(self):
        h = self.start_stack(hooks={"status": 410}, delivery=FAST)
        self.setup_acme(h, people=False, slack=False, webhook=True)
        self.post(h, event("evt-1"))
        [item] = h.wait_deliveries(1, status="failed", client="acme")
        detail = h.ok("GET", f"/v1/deliveries/{item['id']}", "audit")
        self.assertEqual([(a["outcome"], a["status_code"]) for a in detail["attempts_log"]],
                         [("permanent", 410)])
        self.assertIs(h.ok("GET", "/v1/clients/acme/endpoints/siem", "admin")["enabled"], False)
        audit = h.ok("GET", "/v1/audit?kind=endpoint.disabled", "audit")["items"]
        self.assertEqual([(a["actor"], a["subject"]) for a in audit], [("dispatcher", "siem")])
        self.assertEqual(audit[0]["data"]["endpoint"], "siem")
        self.assertEqual(audit[0]["data"]["message"], item["id"])
        self.assertIn("410", audit[0]["data"]["reason"])

        # Later events plan nothing for it (messages already planned fail, naming it disabled).
        self.assertEqual(self.post(h, event("evt-2", phase="eradication"))["messages"], 0)
        self.assertEqual(len(self.hooks.requests("/hooks/siem")), 1)

        # An admin turns it back on.
        h.ok("PUT", "/v1/clients/acme/endpoints/siem", "admin",
             {"type": "webhook", "url": f"{self.hooks.base}/hooks/siem", "enabled": True})
        self.assertIs(h.ok("GET", "/v1/clients/acme/endpoints/siem", "admin")["enabled"], True)
        self.assertIs(h.ok("GET", "/v1/audit/verify", "audit")["ok"], True)

    def test_hung_endpoint_does_not_delay_healthy_ones(self):
        hung = self.hanging_port()
        delivery = dict(FAST, concurrency=6, destination_concurrency=2, attempt_timeout="8s")
        h = self.start_stack(delivery=delivery)
        h.ok("PUT", "/v1/clients/acme", "admin", {"name": "Acme Corp"})
        self.put_webhook(h, "dead", f"http://127.0.0.1:{hung}/hooks/dead")
        self.put_webhook(h, "siem", f"{self.hooks.base}/hooks/siem")
        self.endpoints_plan(h, ["dead", "siem"])
        started = time.monotonic()
        incidents = 8
        for i in range(incidents):
            self.post(h, event(f"evt-{i}", incident=f"INC-{i}"))
        # Eight messages to the hung receiver could fill all six slots for 8 s each; with two
        # slots per endpoint the healthy receiver gets all of its messages at once.
        wait_for(lambda: len(self.hooks.requests("/hooks/siem")) == incidents,
                 timeout=4 * SLOW, message="the healthy endpoint's 8 messages")
        took = time.monotonic() - started
        dead = [d for d in h.deliveries(client="acme") if d["endpoint"] == "dead"]
        self.assertEqual(len(dead), incidents)
        self.assertFalse([d for d in dead if d["status"] == "delivered"])
        print(f"\n8 healthy deliveries beside a hung endpoint: {took:.2f}s", flush=True)

    def test_per_kind_timeout_fails_a_hung_attempt_while_others_go_on(self):
        """[delivery.timeouts] webhook = "2s" beats attempt_timeout = "30s": the hung
        receiver's attempt fails after about 2 s (one transport slot held meanwhile), a
        refused connection fails at once, and the healthy endpoint is delivered at once."""
        hung = self.hanging_port()
        self.mail = self.start_mail()
        self.hooks = self.start_hooks()
        refused = closed_port()  # after the receivers bind, so neither is handed this port
        config = write_config(self.workdir, self.mail.port, self.hooks.port,
                              delivery=dict(FAST, attempt_timeout="30s", breaker_threshold=100),
                              extra='[delivery.timeouts]\nwebhook = "2s"\n')
        h = self.start_herald(config)
        h.ok("PUT", "/v1/clients/acme", "admin", {"name": "Acme Corp"})
        self.put_webhook(h, "dead", f"http://127.0.0.1:{hung}/hooks/dead")
        self.put_webhook(h, "gone", f"http://127.0.0.1:{refused}/hooks/gone")
        self.put_webhook(h, "siem", f"{self.hooks.base}/hooks/siem")
        self.endpoints_plan(h, ["dead", "gone", "siem"])
        self.post(h, event("evt-0"))

        def by_endpoint():
            items = {d["endpoint"]: d for d in h.deliveries(client="acme")}
            if items.get("siem", {}).get("status") != "delivered":
                return None
            for name in ("dead", "gone"):
                if items.get(name, {}).get("attempts", 0) < 1 or \
                        items[name]["status"] == "sending":
                    return None
            return items

        items = wait_for(by_endpoint, timeout=20 * SLOW, message="three first attempts")
        logs = {name: h.ok("GET", f"/v1/deliveries/{d['id']}", "audit")["attempts_log"][0]
                for name, d in items.items()}
        print(f"\nattempt durations: " + ", ".join(f"{n} {a['duration_ms']} ms"
                                                 for n, a in sorted(logs.items())), flush=True)
        dead, gone, siem = logs["dead"], logs["gone"], logs["siem"]
        self.assertEqual(dead["outcome"], "retryable", dead)
        self.assertIn("timed out", dead["error"].lower(), dead)
        self.assertGreaterEqual(dead["duration_ms"], 1900, dead)
        self.assertLess(dead["duration_ms"], 2000 + 2000 * SLOW, dead)
        self.assertEqual(gone["outcome"], "retryable", gone)
        self.assertRegex(gone["error"], r"(?i)refused|couldn't connect", gone)
        self.assertLess(gone["duration_ms"], 1000 * SLOW, gone)
        self.assertEqual((siem["outcome"], siem["status_code"]), ("delivered", 200), siem)
        # The healthy endpoint did not wait for the hung one.
        delivered = parse_time(items["siem"]["delivered_at"])
        self.assertLess(delivered, parse_time(dead["started_at"]) +
                        datetime.timedelta(seconds=1.5), (items["siem"], dead))
        self.assertEqual(items["dead"]["status"], "retrying", items["dead"])

    def test_guard_refuses_loopback_spellings_outside_the_allow_list(self):
        """allow_private = ["127.0.0.1/32"]: 127.0.0.2 in any spelling (dotted, decimal,
        IPv4-mapped IPv6, hex) is refused at connect time, while 127.0.0.1 is delivered."""
        trap = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        trap.bind(("127.0.0.2", 0))
        trap.listen(16)
        trap.setblocking(False)
        self.addCleanup(trap.close)
        port = trap.getsockname()[1]
        self.mail = self.start_mail()
        self.hooks = self.start_hooks()
        config = write_config(self.workdir, self.mail.port, self.hooks.port, delivery=FAST)
        with open(config) as f:
            text = f.read().replace('allow_private = ["127.0.0.0/8"]',
                                    'allow_private = ["127.0.0.1/32"]')
        with open(config, "w") as f:
            f.write(text)
        h = self.start_herald(config)
        h.ok("PUT", "/v1/clients/acme", "admin", {"name": "Acme Corp"})
        spellings = {"dotted": f"http://127.0.0.2:{port}/h",
                     "decimal": f"http://2130706434:{port}/h",
                     "mapped": f"http://[::ffff:127.0.0.2]:{port}/h",
                     "hex": f"http://0x7f000002:{port}/h"}
        for name, url in spellings.items():
            self.put_webhook(h, name, url)
        self.put_webhook(h, "siem", f"{self.hooks.base}/hooks/siem")
        self.endpoints_plan(h, list(spellings) + ["siem"])
        self.post(h, event("evt-0"))
        items = wait_for(lambda: (lambda d: d if len(d) == 5 and all(
            x["status"] in ("delivered", "failed") for x in d) else None)(
                h.deliveries(client="acme")), message="5 settled deliveries")
        for d in items:
            if d["endpoint"] == "siem":
                self.assertEqual(d["status"], "delivered", d)
                continue
            self.assertEqual((d["status"], d["attempts"]), ("failed", 1), d)
            self.assertRegex(d["last_error"],
                             r"destination (127\.0\.0\.2|::ffff:127\.0\.0\.2) is a loopback "
                             r"address; add it to \[network\] allow_private", d)
        with self.assertRaises(BlockingIOError):
            trap.accept()  # nothing ever connected
        self.assertEqual(len(self.hooks.requests("/hooks/siem")), 1)

    def test_breaker_pauses_a_failing_destination(self):
        with_breaker = self.count_attempts(3, "with")
        without = self.count_attempts(1000, "without")
        print(f"\nattempts to a refusing port in 6 s: {with_breaker} with the breaker, "
              f"{without} without", flush=True)
        self.assertLess(with_breaker, without)
        self.assertLessEqual(with_breaker, 14)

    def count_attempts(self, breaker_threshold, name):
        delivery = dict(FAST, breaker_threshold=breaker_threshold, breaker_cool_down="2s",
                        retry_horizon="1h")
        mail = self.start_mail(name=f"mail-{name}")
        hooks = self.start_hooks(name=f"hooks-{name}")
        # Only now: a port released before the receivers bind can be handed to one of them.
        port = closed_port()
        config = write_config(self.workdir, mail.port, hooks.port, delivery=delivery,
                              database=self.path(f"{name}.db"), name=f"{name}.toml")
        h = self.start_herald(config, log_name=f"herald-{name}.log")
        h.ok("PUT", "/v1/clients/acme", "admin", {"name": "Acme Corp"})
        self.put_webhook(h, "dead", f"http://127.0.0.1:{port}/hooks/dead")
        self.put_webhook(h, "siem", f"{hooks.base}/hooks/siem")
        self.endpoints_plan(h, ["dead", "siem"])
        for i in range(6):
            self.post(h, event(f"evt-{i}", incident=f"INC-{i}"))
        # The healthy endpoint on another port is not held back by the dead one's breaker.
        wait_for(lambda: len(hooks.requests("/hooks/siem")) == 6, timeout=5 * SLOW,
                 message="the healthy endpoint's messages")
        time.sleep(6)
        dead = [d for d in h.deliveries(client="acme") if d["endpoint"] == "dead"]
        self.assertEqual(len(dead), 6)
        # The breaker never fails a message.
        self.assertFalse([d for d in dead if d["status"] in ("delivered", "failed")], dead)
        attempts = self.attempts(h, dead)
        metrics = h.request("GET", "/metrics").body
        gauge = re.search(r'herald_breaker_open\{destination="127\.0\.0\.1:%d"\} (\d)' % port,
                          metrics)
        if breaker_threshold < 100:
            self.assertIsNotNone(gauge, metrics)
            self.assertEqual(gauge.group(1), "1")
            self.assertNotIn("/hooks/dead", metrics)
        self.stop_herald(h)
        return attempts

    def test_slack_webhook_rate_limited_to_one_per_second(self):
        h = self.start_stack(delivery=FAST)
        h.ok("PUT", "/v1/clients/acme", "admin", {"name": "Acme Corp"})
        h.ok("PUT", "/v1/clients/acme/endpoints/soc-slack", "admin",
             {"type": "slack", "url": f"{self.hooks.base}/slack/T000/B000/XXXXSECRET"})
        self.endpoints_plan(h, ["soc-slack"])
        for i in range(3):
            self.post(h, event(f"evt-{i}", incident=f"INC-{i}"))
        items = h.wait_deliveries(3, client="acme")
        starts = []
        for d in items:
            detail = h.ok("GET", f"/v1/deliveries/{d['id']}", "audit")
            # Held back by the rate limit is not an attempt.
            self.assertEqual(detail["attempts"], 1, detail)
            starts.append(parse_time(detail["attempts_log"][0]["started_at"]))
        starts.sort()
        gaps = [(b - a).total_seconds() for a, b in zip(starts, starts[1:])]
        print(f"\ngaps between Slack messages: {gaps}", flush=True)
        for gap in gaps:
            self.assertGreaterEqual(gap, 0.9, gaps)
        self.assertEqual(len(self.hooks.requests()), 3)

    def test_429_retry_after_pauses_the_whole_endpoint(self):
        h = self.start_stack(hooks={"fail_first": 1, "fail_status": 429, "retry_after": 2},
                             delivery=FAST)
        h.ok("PUT", "/v1/clients/acme", "admin", {"name": "Acme Corp"})
        self.put_webhook(h, "siem", f"{self.hooks.base}/hooks/siem")
        self.endpoints_plan(h, ["siem"])
        self.post(h, event("evt-0", incident="INC-0"))
        [first] = wait_for(lambda: [d for d in h.deliveries(client="acme")
                                    if d["attempts"] >= 1 and d["status"] != "sending"],
                           message="the first attempt's 429")
        log = h.ok("GET", f"/v1/deliveries/{first['id']}", "audit")["attempts_log"]
        self.assertEqual(log[0]["status_code"], 429)
        told = parse_time(log[0]["started_at"])
        # Other messages to the same endpoint wait out the Retry-After too.
        for i in (1, 2):
            self.post(h, event(f"evt-{i}", incident=f"INC-{i}"))
        items = h.wait_deliveries(3, client="acme")
        for d in items:
            if d["id"] == first["id"]:
                continue
            detail = h.ok("GET", f"/v1/deliveries/{d['id']}", "audit")
            self.assertEqual(detail["attempts"], 1, detail)
            started = parse_time(detail["attempts_log"][0]["started_at"])
            self.assertGreaterEqual((started - told).total_seconds(), 1.9, detail)
        self.assertEqual(len(self.hooks.requests("/hooks/siem")), 4)


if __name__ == "__main__":
    unittest.main()
