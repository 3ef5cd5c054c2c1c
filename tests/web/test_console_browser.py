"""The console in a real headless Chromium: starts Herald and its receivers, seeds a client,
then runs console.spec.mjs with node (playwright-core, installed by `npm ci` from
package-lock.json into the build tree; the browser is Debian's /usr/bin/chromium)."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

from harness import SLOW, TOKENS, HeraldTestCase, WebhookReceiver, whsec  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
# Where node_modules goes: the build tree (CMake passes it), never the source tree.
WORKDIR = os.environ.get("HERALD_WEB_WORKDIR") or os.path.join(HERE, "..", "..", "build",
                                                                  "tests", "web")


def npm_ci():
    """Installs the locked packages once per lock file (a stamp holds the lock's hash)."""
    os.makedirs(WORKDIR, exist_ok=True)
    for name in ("package.json", "package-lock.json", "console.spec.mjs"):
        shutil.copyfile(os.path.join(HERE, name), os.path.join(WORKDIR, name))
    with open(os.path.join(HERE, "package-lock.json"), "rb") as f:
        lock_hash = hashlib.sha256(f.read()).hexdigest()
    stamp = os.path.join(WORKDIR, "node_modules", ".herald-lock-sha256")
    if os.path.exists(stamp):
        with open(stamp) as f:
            if f.read() == lock_hash:
                return
    env = dict(os.environ)
    if not env.get("HOME"):
        env["npm_config_cache"] = os.path.join(WORKDIR, ".npm-cache")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=WORKDIR,
                   check=True, timeout=600, env=env)
    with open(stamp, "w") as f:
        f.write(lock_hash)


class ConsoleBrowserTest(HeraldTestCase):

    def test_console_in_chromium(self):
        for tool in ("node", "npm"):
            self.assertTrue(shutil.which(tool), f"{tool} is missing: `make deps` installs it")
        self.assertTrue(os.access(CHROMIUM, os.X_OK), "chromium is missing: `make deps` installs it")
        npm_ci()

        h = self.start_stack()
        # siem's receiver refuses the first delivery with 400 (a permanent failure), so the
        # console has a failed message to replay; the replay is then accepted.
        bad = WebhookReceiver(self.workdir, name="siem", fail_first=1, fail_status=400)
        self.addCleanup(bad.stop)
        h.ok("PUT", "/v1/clients/acme", "admin",
             {"name": "Acme Corp", "timezone": "Europe/Berlin", "locale": "en"})
        h.ok("PUT", "/v1/clients/acme/contacts/dana", "admin",
             {"name": "Dana Lee", "roles": ["executive"], "email": "dana@acme.example",
              "phone": "+15551234567", "timezone": "America/New_York",
              "quiet_hours": {"start": "22:00", "end": "07:00"}, "channels": ["email", "sms"]})
        h.ok("PUT", "/v1/clients/acme/contacts/lee", "admin",
             {"name": "Lee Park", "roles": ["legal"], "email": "lee@acme.example",
              "timezone": "Europe/Berlin", "channels": ["email"]})
        h.ok("PUT", "/v1/clients/acme/endpoints/soc-slack", "admin",
             {"type": "slack", "url": f"{self.hooks.base}/slack/T000/B000/XXXXSECRET"})
        siem_url = f"{bad.base}/hooks/siem"
        h.ok("PUT", "/v1/clients/acme/endpoints/siem", "admin",
             {"type": "webhook", "url": siem_url, "secret": whsec()})
        h.ok("PUT", "/v1/clients/acme/plan", "admin", {"rules": [
            {"id": "contain-people", "phases": ["containment", "eradication"],
             "min_severity": "high", "roles": ["executive", "legal"], "channels": ["email"],
             "delay": "0s", "quiet_hours": "ignore"},
            {"id": "contain-rooms", "phases": ["containment"], "endpoints": ["soc-slack", "siem"],
             "delay": "0s"}]})

        env = dict(os.environ, HERALD_URL=f"http://127.0.0.1:{h.port}",
                   HERALD_TOKENS=json.dumps(TOKENS), HERALD_ARTIFACTS=self.workdir,
                   HERALD_SIEM_URL=siem_url, HERALD_NEW_SECRET=whsec(),
                   HERALD_E2E_SLOW=str(SLOW), NO_PROXY="127.0.0.1,localhost")
        for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
            env.pop(proxy, None)
        run = subprocess.run(["node", "console.spec.mjs"], cwd=WORKDIR, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             timeout=240 * SLOW)
        sys.stderr.write(run.stdout)
        self.assertEqual(run.returncode, 0, "console.spec.mjs failed (its output is above)")
        self.assertTrue(run.stdout.rstrip().endswith("ok"))


if __name__ == "__main__":
    unittest.main()
