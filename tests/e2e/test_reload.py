"""SIGHUP reloads tokens, SMTP, SMS and log settings without losing a message; an invalid file
is refused and the running configuration stays; SIGTERM lets attempts in flight finish."""

import json
import re
import signal
import unittest

from harness import (SLOW, STOP_TIMEOUT, TOKENS, HeraldTestCase, event, sha256_hex, wait_for,
                     write_config)

ROTATED_INGEST = "tok-ingest-rotated-0b9e2c"


class ReloadTest(HeraldTestCase):

    def write(self, mail_port, extra="", rotate_ingest=False, listen="127.0.0.1:0"):
        path = write_config(self.workdir, mail_port, self.hooks.port, extra=extra,
                            listen=listen, name="herald.toml")
        if rotate_ingest:
            with open(path) as f:
                text = f.read()
            text = text.replace(sha256_hex(TOKENS["ingest"]), sha256_hex(ROTATED_INGEST))
            with open(path, "w") as f:
                f.write(text)
        return path

    def hup_and_wait(self, h, line, occurrence):
        """SIGHUP, then waits for the occurrence-th log line containing `line`."""
        h.proc.send_signal(signal.SIGHUP)
        return wait_for(lambda: h.log_text().count(line) >= occurrence, 10 * SLOW,
                        f"{line!r} #{occurrence} in the log")

    def send(self, h, n, token="all"):
        r = h.request("POST", "/v1/events", token,
                      event(f"evt-reload-{n}", incident=f"INC-{n}"))
        self.assertEqual(r.status, 202, r.body)

    def test_reload_applies_tokens_smtp_and_log_without_losing_messages(self):
        mail1 = self.start_mail(name="mail1")
        mail2 = self.start_mail(name="mail2")
        # Every webhook and SMS answer takes 1.5 s: attempts are in flight across the reload.
        self.hooks = self.start_hooks(delay=1.5)
        config = self.write(mail1.port)
        h = self.start_herald(config)
        self.setup_acme(h, people=True, slack=False, webhook=True)  # 4 messages per event

        self.send(h, 1)
        wait_for(lambda: self.hooks.requests("/hooks/siem"), message="the first webhook in flight")
        self.write(mail2.port, rotate_ingest=True,
                   extra='[log]\nlevel = "debug"\nformat = "json"\n')
        h.proc.send_signal(signal.SIGHUP)
        self.send(h, 2)  # while the reload happens
        wait_for(lambda: "reloaded " in h.log_text(), 10 * SLOW, "the reload")

        # Tokens: the rotated ingest token works, the old one no longer does.
        self.assertEqual(h.request("POST", "/v1/events", "ingest",
                                   event("evt-old-token", incident="INC-X")).status, 401)
        self.send(h, 3, token="lit:" + ROTATED_INGEST)

        # Every message of the three events arrives, once.
        deliveries = h.wait_deliveries(12, timeout=60 * SLOW)
        self.assertTrue(all(d["attempts"] == 1 for d in deliveries),
                        [(d["id"], d["attempts"], d["last_error"]) for d in deliveries])
        emails = mail1.records() + mail2.records()
        self.assertEqual(len(emails), 6, "2 emails per event, none lost, none twice")
        # SMTP: messages of the event after the reload went to the new server.
        inc3 = [r for r in mail2.records() if "INC-3" in r["data"]]
        self.assertEqual(len(inc3), 2)
        self.assertFalse([r for r in mail1.records() if "INC-3" in r["data"]])
        self.assertEqual(len(self.hooks.requests("/hooks/siem")), 3)

        # Log: JSON lines at debug level after the reload.
        log = h.log_text()
        after = log[log.index("received SIGHUP"):].splitlines()[1:]
        records = [json.loads(line) for line in after if line.startswith("{")]
        self.assertGreater(len(records), 5)
        non_json = [line for line in after if line.strip() and not line.startswith("{")]
        self.assertEqual(non_json, [], "every line after the reload is JSON")
        self.assertIn("debug", {r["level"] for r in records})
        self.assertTrue(all({"time", "level", "message"} <= set(r) for r in records))

        # An invalid file is refused, naming the problem; the running configuration stays.
        with open(config, "a") as f:
            f.write("\n[smtp_typo]\nurl = 1\n")
        self.hup_and_wait(h, "reload refused", 1)
        self.assertIn("smtp_typo", h.log_text())
        self.send(h, 4, token="lit:" + ROTATED_INGEST)
        wait_for(lambda: len([r for r in mail2.records() if "INC-4" in r["data"]]) == 2,
                 message="INC-4's emails at the new server")

        # A token name that an API token holds: refused too.
        h.ok("POST", "/v1/tokens", "admin", {"name": "robot", "scopes": ["audit"]}, expect=201)
        self.write(mail2.port, rotate_ingest=True, extra='[[tokens]]\nname = "robot"\n'
                   f'sha256 = "{"cd" * 32}"\nscopes = ["audit"]\n')
        self.hup_and_wait(h, "reload refused", 2)
        self.assertIn('token \\"robot\\" is both in the config file', h.log_text())
        self.assertEqual(h.request("POST", "/v1/events", "lit:" + ROTATED_INGEST,
                                   event("evt-still", incident="INC-5")).status, 202)

        # What needs a restart is named, and the rest applies.
        self.write(mail1.port, listen="127.0.0.1:1")
        self.hup_and_wait(h, "reloaded ", 2)
        self.assertRegex(h.log_text(), r"reload: server\.listen, server\.public_url changed in "
                         r".*: these apply only after a restart")
        self.assertEqual(h.request("POST", "/v1/events", "ingest",
                                   event("evt-back", incident="INC-6")).status, 202)
        wait_for(lambda: [r for r in mail1.records() if "INC-6" in r["data"]],
                 message="INC-6's email at the first server again")

    def test_sigterm_lets_attempts_in_flight_finish(self):
        self.mail = self.start_mail()
        self.hooks = self.start_hooks(delay=2)
        config = self.write(self.mail.port)
        h = self.start_herald(config)
        self.setup_acme(h, people=False, slack=False, webhook=True)
        self.send(h, 1)
        wait_for(lambda: self.hooks.requests("/hooks/siem"), message="the webhook in flight")
        code, took = h.stop()
        self.assertEqual(code, 0)
        self.assertLess(took, STOP_TIMEOUT)
        self.assertNotIn("were in flight", h.log_text())

        h = self.start_herald(config, log_name="herald2.log")
        self.assertNotIn("were in flight", h.log_text())
        [d] = h.deliveries()
        self.assertEqual((d["status"], d["attempts"]), ("delivered", 1), d)
        self.assertEqual(len(self.hooks.requests("/hooks/siem")), 1, "not sent twice")


if __name__ == "__main__":
    unittest.main()
