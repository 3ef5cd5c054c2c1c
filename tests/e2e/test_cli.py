"""The command line: check-config, migrate, audit verify, help."""

import os
import re
import sqlite3
import subprocess
import unittest

from harness import HERALD_BIN, SLOW, SOURCE_DIR, HeraldTestCase, write_config

EXAMPLE = os.path.join(SOURCE_DIR, "examples", "herald.toml")


class CliTest(HeraldTestCase):

    def cli(self, *args):
        p = subprocess.run([HERALD_BIN, *args], capture_output=True, text=True,
                           cwd=self.workdir, timeout=60 * SLOW, stdin=subprocess.DEVNULL)
        self.assert_no_sanitizer_report(p.stdout + p.stderr)
        return p.returncode, p.stdout + p.stderr

    def write(self, name, text):
        path = self.path(name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_check_config_example(self):
        code, out = self.cli("check-config", "--config", EXAMPLE)
        self.assertEqual(code, 0, out)
        self.assertIn("ok", out)
        # It only checks: nothing is created next to it.
        self.assertFalse(os.path.exists(self.path("var")))

    def test_check_config_generated(self):
        config = write_config(self.workdir, 2525, 8025, delivery={"max_backoff": "2s"})
        code, out = self.cli("check-config", "--config", config)
        self.assertEqual(code, 0, out)

    def test_check_config_errors(self):
        cases = [
            ("unknown key", '[server]\nlisten = "127.0.0.1:0"\n\n[smtp]\nurl = '
             '"smtp://127.0.0.1:2525"\nfrom = "a@b.example"\npasword = "hunter2"\n',
             7, '"smtp.pasword"'),
            ("unknown table", '[server]\nlisten = "127.0.0.1:0"\n[servre]\nport = 1\n', 3,
             "servre"),
            ("bad listen", '\n[server]\nlisten = "localhost"\n', 3, "server.listen"),
            ("bad duration", '[delivery]\nmax_backoff = "soon"\n', 2, "delivery.max_backoff"),
            ("syntax", '[server]\nlisten = \n', 2, "TOML syntax error"),
        ]
        for label, text, line, needle in cases:
            with self.subTest(label):
                path = self.write("bad.toml", text)
                code, out = self.cli("check-config", "--config", path)
                self.assertEqual(code, 1, out)
                self.assertIn(needle, out)
                self.assertRegex(out, rf"{re.escape(path)}:{line}:\d+: ")
                self.assertNotIn("hunter2", out)
        # serve refuses the same file, with the same message, before listening.
        path = self.write("bad.toml", '[server]\nlisten = "127.0.0.1:0"\nlisen = "x"\n')
        code, out = self.cli("serve", "--config", path)
        self.assertEqual(code, 1, out)
        self.assertRegex(out, rf"{re.escape(path)}:3:\d+: .*server\.lisen")
        code, out = self.cli("check-config", "--config", self.path("missing.toml"))
        self.assertEqual(code, 1, out)

    def test_migrate(self):
        db = self.path("sub", "herald.db")
        os.makedirs(self.path("sub"))
        code, out = self.cli("migrate", "--database", db)
        self.assertEqual(code, 0, out)
        self.assertRegex(out, r"schema version \d+ \(was 0\)")
        self.assertTrue(os.path.exists(db))
        with sqlite3.connect(db) as c:
            tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            version = c.execute("PRAGMA user_version").fetchone()[0]
        self.assertIn("audit", tables)
        self.assertGreaterEqual(version, 1)
        code, out = self.cli("migrate", "--database", db)  # idempotent
        self.assertEqual(code, 0, out)
        self.assertIn(f"schema version {version} (was {version})", out)
        code, out = self.cli("audit", "verify", "--database", db)
        self.assertEqual(code, 0, out)
        self.assertIn("ok (0 records)", out)

    def test_audit_verify_and_tamper(self):
        h = self.start_stack()
        self.setup_acme(h)
        records = h.ok("GET", "/v1/audit/verify", "audit")["records"]
        self.assertGreaterEqual(records, 5)
        self.stop_herald(h)
        db = self.path("herald.db")
        code, out = self.cli("audit", "verify", "--database", db)
        self.assertEqual(code, 0, out)
        self.assertIn(f"ok ({records} records)", out)

        # The database refuses to rewrite history...
        with sqlite3.connect(db) as c:
            with self.assertRaises(sqlite3.DatabaseError):
                c.execute("UPDATE audit SET data='{}' WHERE seq=1")
        # ...unless someone with file access removes the guard: the chain still tells.
        c = sqlite3.connect(db)
        c.execute("DROP TRIGGER audit_no_update")
        c.execute("UPDATE audit SET data='{}' WHERE seq=1")
        c.commit()
        c.close()
        code, out = self.cli("audit", "verify", "--database", db)
        self.assertEqual(code, 1, out)
        self.assertRegex(out, r"\brecord 1\b")
        self.assertIn("BROKEN", out)
        # The running daemon's verify says the same.
        h2 = self.start_herald(self.config)
        verify = h2.ok("GET", "/v1/audit/verify", "audit")
        self.assertIs(verify["ok"], False)
        self.assertEqual(verify["first_bad"], 1)

    def test_help(self):
        code, out = self.cli("--help")
        self.assertEqual(code, 0, out)
        for word in ("serve", "check-config", "migrate", "audit"):
            self.assertIn(word, out)
        code, out = self.cli("serve", "--help")
        self.assertEqual(code, 0, out)
        self.assertIn("--config", out)
        code, out = self.cli("audit", "verify", "--help")
        self.assertEqual(code, 0, out)
        self.assertIn("--database", out)
        code, out = self.cli("frobnicate")
        self.assertNotEqual(code, 0, out)
        code, out = self.cli()
        self.assertNotEqual(code, 0, out)


if __name__ == "__main__":
    unittest.main()
