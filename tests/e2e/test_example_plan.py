"""examples/acme-setup.sh and examples/acme-plan.json (docs/plan.md) against a real herald."""

import json
import os
import subprocess
import unittest

from harness import SLOW, SOURCE_DIR, TOKENS, HeraldTestCase

SETUP = os.path.join(SOURCE_DIR, "examples", "acme-setup.sh")
PLAN = os.path.join(SOURCE_DIR, "examples", "acme-plan.json")
DEFAULT_ROLES = {"technician", "incident_commander", "executive", "hr", "pr", "communications",
                 "legal", "end_users"}
PHASES = ["preparation", "identification", "containment", "eradication", "recovery",
          "lessons_learned"]


class ExamplePlanTest(HeraldTestCase):

    def setUp(self):
        self.h = self.start_stack()

    def run_setup(self, url=None):
        env = dict(os.environ, HERALD_URL=url or f"http://127.0.0.1:{self.h.port}",
                   HERALD_TOKEN=TOKENS["all"], DEMO_RECEIVER=self.hooks.base)
        return subprocess.run(["bash", SETUP], env=env, capture_output=True, text=True,
                              timeout=60 * SLOW)

    def test_setup_script_builds_the_documented_plan(self):
        done = self.run_setup()
        self.assertEqual(done.returncode, 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}")
        # The script's last line is Herald's answer to the plan PUT.
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        self.assertEqual([w for w in answer["warnings"] if "no rule covers" in w], [],
                         answer["warnings"])
        self.assertEqual([w for w in answer["warnings"] if "no contact holds" in w], [],
                         answer["warnings"])
        self.assertIn("whsec_", done.stdout, "the generated webhook secret is shown")

        stored = self.h.ok("GET", "/v1/clients/acme/plan", "audit")
        self.assertEqual(stored["rules"], answer["rules"])
        with open(PLAN) as f:
            written = json.load(f)["rules"]
        self.assertEqual([r["id"] for r in stored["rules"]], [r["id"] for r in written])
        for mine, canonical in zip(written, stored["rules"]):
            for key, value in mine.items():
                self.assertEqual(canonical[key], value, f"rule {mine['id']}: {key}")

        contacts = self.h.ok("GET", "/v1/clients/acme/contacts", "audit")
        items = contacts["items"] if isinstance(contacts, dict) else contacts
        held = {role for c in items for role in c["roles"]}
        self.assertTrue(DEFAULT_ROLES <= held, DEFAULT_ROLES - held)

        for phase in PHASES + ["closed"]:
            preview = self.h.ok("POST", "/v1/clients/acme/plan/preview", "audit",
                                {"phase": phase, "severity": "critical",
                                 "at": "2026-12-04T15:00:00Z"})
            self.assertGreater(len(preview["messages"]), 0, phase)
            rules = {m["rule"] for m in preview["messages"]}
            self.assertIn("soc-feed", rules, phase)
            self.assertTrue(any("contact" in m for m in preview["messages"]), phase)

        # Running it again changes nothing but the plan's version.
        again = self.run_setup()
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(self.h.ok("GET", "/v1/clients/acme/plan", "audit")["rules"],
                         stored["rules"])

    def test_setup_script_fails_loudly(self):
        env = dict(os.environ, HERALD_URL=f"http://127.0.0.1:{self.h.port}",
                   HERALD_TOKEN="not-a-token", DEMO_RECEIVER=self.hooks.base)
        done = subprocess.run(["bash", SETUP], env=env, capture_output=True, text=True,
                              timeout=60 * SLOW)
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("401", done.stderr + done.stdout)
        self.assertEqual(self.h.request("GET", "/v1/clients/acme", "audit").status, 404)


if __name__ == "__main__":
    unittest.main()
