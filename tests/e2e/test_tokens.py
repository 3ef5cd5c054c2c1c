"""API tokens made through the API: shown once, stored hashed, scoped, revoked at once, and
never visible again in a listing, the audit log or the daemon's log."""

import datetime
import hashlib
import json
import os
import subprocess
import unittest

from harness import (HERALD_BIN, SLOW, TOKENS, Herald, HeraldTestCase, event, wait_for,
                     write_config)


def rfc3339(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


class TokensTest(HeraldTestCase):

    def setUp(self):
        self.mail = self.start_mail()
        self.hooks = self.start_hooks()
        # Debug level: even the most talkative log must not show a token or its hash.
        self.config = write_config(self.workdir, self.mail.port, self.hooks.port,
                                   extra='[log]\nlevel = "debug"\n')
        self.h = self.start_herald(self.config)
        self.setup_acme(self.h, people=False, slack=True, webhook=False)

    def create(self, name, scopes, token="admin", **extra):
        return self.h.request("POST", "/v1/tokens", token, dict(name=name, scopes=scopes, **extra))

    def assert_secret_absent(self, secret, where, text):
        self.assertNotIn(secret, text, f"{where} shows a secret")

    def test_create_use_scope_revoke(self):
        h = self.h
        r = self.create("siem", ["ingest"])
        self.assertEqual(r.status, 201, r.body)
        plaintext = r.body["token"]
        digest = hashlib.sha256(plaintext.encode()).hexdigest()
        self.assertRegex(plaintext, r"^hrd_[A-Za-z0-9_-]{43}$")  # 256 bits, base64url
        self.assertEqual(r.body["scopes"], ["ingest"])
        self.assertEqual(r.body["source"], "api")
        self.assertEqual(r.body["created_by"], "admin")
        self.assertNotIn(digest, json.dumps(r.body))
        lit = "lit:" + plaintext

        # It works for its scope, and only for it.
        r = h.request("POST", "/v1/events", lit, event("evt-tok-1"))
        self.assertEqual(r.status, 202, r.body)
        r = h.request("GET", "/v1/deliveries", lit)
        self.assertEqual(r.status, 403, r.body)
        self.assertIn("siem", r.body["error"]["message"])
        r = h.request("POST", "/v1/tokens", lit, {"name": "x", "scopes": ["admin"]})
        self.assertEqual(r.status, 403, r.body)

        # Listed with its use, never with the token or its hash; config tokens listed too.
        listing = h.ok("GET", "/v1/tokens", "admin")
        by_name = {t["name"]: t for t in listing["items"]}
        self.assertEqual(by_name["siem"]["source"], "api")
        self.assertIsNotNone(by_name["siem"]["last_used_at"])
        self.assertIsNotNone(by_name["siem"]["created_at"])
        self.assertEqual(by_name["admin"]["source"], "config")
        self.assertFalse(by_name["siem"]["expired"])
        text = json.dumps(listing)
        self.assert_secret_absent(plaintext, "GET /v1/tokens", text)
        self.assert_secret_absent(digest, "GET /v1/tokens", text)
        for name, config_token in TOKENS.items():
            self.assertNotIn(hashlib.sha256(config_token.encode()).hexdigest(), text)
        self.assertEqual(h.request("GET", "/v1/tokens", "audit").status, 403)

        # Names are unique across the config file and the API.
        r = self.create("siem", ["audit"])
        self.assertEqual((r.status, r.body["error"]["code"]), (409, "token_exists"), r.body)
        r = self.create("admin", ["audit"])
        self.assertEqual((r.status, r.body["error"]["code"]), (409, "token_exists"), r.body)
        r = h.request("DELETE", "/v1/tokens/admin", "admin")
        self.assertEqual((r.status, r.body["error"]["code"]), (409, "token_in_config"), r.body)
        self.assertEqual(h.request("DELETE", "/v1/tokens/nope", "admin").status, 404)

        # Revoked: refused at once.
        self.assertEqual(h.request("DELETE", "/v1/tokens/siem", "admin").status, 204)
        r = h.request("POST", "/v1/events", lit, event("evt-tok-2"))
        self.assertEqual(r.status, 401, r.body)
        self.assertNotIn("siem", [t["name"] for t in h.ok("GET", "/v1/tokens", "admin")["items"]])

        # Audited, by name only.
        records = h.ok("GET", "/v1/audit?limit=500", "audit")["items"]
        kinds = [(a["kind"], a["actor"], a["subject"]) for a in records
                 if a["kind"].startswith("token.")]
        self.assertEqual(kinds, [("token.create", "admin", "siem"),
                                 ("token.delete", "admin", "siem")])
        created = next(a for a in records if a["kind"] == "token.create")
        self.assertEqual(created["data"]["after"]["scopes"], ["ingest"])
        audit_text = json.dumps(records)
        self.assert_secret_absent(plaintext, "the audit log", audit_text)
        self.assert_secret_absent(digest, "the audit log", audit_text)
        self.assertTrue(h.ok("GET", "/v1/audit/verify", "audit")["ok"])

        log = h.log_text()
        self.assertIn('token "siem" created by "admin"', log)
        self.assertIn('token "siem" revoked by "admin"', log)
        self.assert_secret_absent(plaintext, "the log", log)
        self.assert_secret_absent(digest, "the log", log)

    def test_validation(self):
        cases = [
            ({"name": "a b", "scopes": ["audit"]}, "name"),
            ({"scopes": ["audit"]}, "name"),
            ({"name": "x", "scopes": []}, "scopes"),
            ({"name": "x", "scopes": ["root"]}, "scopes[0]"),
            ({"name": "x", "scopes": ["audit"], "expires_at": "tomorrow"}, "expires_at"),
            ({"name": "x", "scopes": ["audit"], "expires_at": "2020-01-01T00:00:00Z"},
             "expires_at"),
            ({"name": "x", "scopes": ["audit"], "sha256": "00"}, "sha256"),
        ]
        for body, field in cases:
            with self.subTest(body=body):
                r = self.h.request("POST", "/v1/tokens", "admin", body)
                self.assertEqual(r.status, 422, r.body)
                self.assertEqual(r.body["error"]["field"], field, r.body)
        self.assertEqual(self.h.request("POST", "/v1/tokens", "audit",
                                        {"name": "x", "scopes": ["audit"]}).status, 403)
        self.assertEqual(self.h.request("POST", "/v1/tokens", None,
                                        {"name": "x", "scopes": ["audit"]}).status, 401)

    def test_expiry(self):
        soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=3)
        r = self.create("short", ["audit"], expires_at=rfc3339(soon))
        self.assertEqual(r.status, 201, r.body)
        lit = "lit:" + r.body["token"]
        self.assertEqual(self.h.request("GET", "/v1/audit/verify", lit).status, 200)

        def refused():
            r = self.h.request("GET", "/v1/audit/verify", lit)
            return r if r.status == 401 else None

        r = wait_for(refused, 10 * SLOW, "the token to expire")
        self.assertIn("expired", r.body["error"]["message"])
        items = self.h.ok("GET", "/v1/tokens", "admin")["items"]
        self.assertTrue(next(t for t in items if t["name"] == "short")["expired"])

    def test_survives_restart_and_clash_with_config(self):
        r = self.create("keeper", ["audit"])
        lit = "lit:" + r.body["token"]
        self.stop_herald(self.h)
        self.h = self.start_herald(self.config)
        self.assertEqual(self.h.request("GET", "/v1/audit/verify", lit).status, 200)
        self.stop_herald(self.h)

        # A config-file token with the same name: refused at start, naming it.
        with open(self.config, "a") as f:
            f.write('\n[[tokens]]\nname = "keeper"\nsha256 = "%s"\nscopes = ["audit"]\n'
                    % ("ab" * 32))
        p = subprocess.run([HERALD_BIN, "serve", "--config", self.config], capture_output=True,
                           text=True, timeout=60 * SLOW)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn('token "keeper" is both in the config file and made through the API',
                      p.stdout + p.stderr)

    def test_cli(self):
        env = {k: v for k, v in os.environ.items() if k not in ("HERALD_URL", "HERALD_TOKEN")}
        env["HERALD_URL"] = f"http://127.0.0.1:{self.h.port}"
        env["HERALD_TOKEN"] = TOKENS["admin"]

        def cli(*args, token=None):
            e = dict(env)
            if token:
                e["HERALD_TOKEN"] = token
            return subprocess.run([HERALD_BIN, *args], capture_output=True, text=True, env=e,
                                  timeout=60 * SLOW)

        p = cli("tokens", "create", "auditor", "--scope", "audit", "--expires-at",
                "2099-01-01T00:00:00Z")
        self.assertEqual(p.returncode, 0, p.stderr)
        plaintext = p.stdout.strip()
        self.assertRegex(plaintext, r"^hrd_[A-Za-z0-9_-]{43}$")
        self.assertIn("shown only this once", p.stderr)
        self.assertEqual(cli("audit", "verify", token=plaintext).returncode, 0)

        p = cli("tokens", "list")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"NAME\s+SCOPES\s+SOURCE")
        self.assertRegex(p.stdout, r"auditor\s+audit\s+api\s+\S+\s+2099-01-01T00:00:00Z\s+\S+")
        self.assertRegex(p.stdout, r"admin\s+admin\s+config")
        self.assertNotIn(plaintext, p.stdout)

        p = cli("tokens", "create", "bad", "--scope", "root")
        self.assertEqual(p.returncode, 2, p.stderr)
        p = cli("tokens", "delete", "admin")
        self.assertEqual(p.returncode, 1)
        self.assertIn("config file", p.stderr)
        p = cli("tokens", "delete", "auditor")
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "deleted token auditor"))
        self.assertEqual(cli("audit", "verify", token=plaintext).returncode, 1)


if __name__ == "__main__":
    unittest.main()
