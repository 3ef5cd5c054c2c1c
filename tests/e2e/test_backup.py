"""herald backup: an online copy of the live database while events keep arriving, checked,
mode 0600, never over an existing file; restored, herald starts on it with its history."""

import os
import shutil
import sqlite3
import stat
import subprocess
import threading
import unittest

from harness import HERALD_BIN, SLOW, HeraldTestCase, event


class BackupTest(HeraldTestCase):

    def run_cli(self, *args):
        p = subprocess.run([HERALD_BIN, *args], capture_output=True, text=True,
                           timeout=120 * SLOW)
        self.assert_no_sanitizer_report(p.stdout + p.stderr)
        return p

    def test_backup_while_running_and_restore(self):
        h = self.start_stack()
        self.setup_acme(h, people=False, slack=False, webhook=True)
        db = self.path("herald.db")
        for n in range(5):
            h.ok("POST", "/v1/events", "ingest", event(f"evt-b{n}", incident=f"INC-{n}"))
        h.wait_deliveries(5)

        # Events keep arriving while the backup runs.
        stop = threading.Event()
        sent = []

        def writer():
            n = 100
            while not stop.is_set() and n < 400:
                h.ok("POST", "/v1/events", "ingest", event(f"evt-b{n}", incident=f"INC-{n}"))
                sent.append(n)
                n += 1

        t = threading.Thread(target=writer)
        t.start()
        try:
            backup = self.path("backup.db")
            p = self.run_cli("backup", "--database", db, "--to", backup)
        finally:
            stop.set()
            t.join()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"-> .*backup\.db: \d+ pages, schema version \d+, "
                                   r"integrity ok")
        self.assertEqual(stat.S_IMODE(os.stat(backup).st_mode), 0o600)
        self.assertFalse(os.path.exists(backup + ".partial"))
        with sqlite3.connect(backup) as c:
            events = c.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            self.assertEqual(c.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        self.assertGreaterEqual(events, 5)
        p = self.run_cli("audit", "verify", "--database", backup)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

        # Never over an existing file; a missing database is named.
        p = self.run_cli("backup", "--database", db, "--to", backup)
        self.assertEqual(p.returncode, 1)
        self.assertIn("exists already", p.stderr)
        p = self.run_cli("backup", "--database", self.path("nope.db"), "--to", self.path("b2.db"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("no such database", p.stderr)
        self.assertFalse(os.path.exists(self.path("b2.db")))

        # Restore: stop, put the copy in place (without the old -wal/-shm), start.
        self.stop_herald(h)
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)
        shutil.copy(backup, db)
        h = self.start_herald(self.config, log_name="herald2.log")
        self.assertEqual(len(h.deliveries()), events)
        r = h.request("POST", "/v1/events", "ingest", event("evt-b0", incident="INC-0"))
        self.assertEqual((r.status, r.body["duplicate"]), (200, True))
        self.assertTrue(h.ok("GET", "/v1/audit/verify", "audit")["ok"])

    def test_help(self):
        p = self.run_cli("backup", "--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("Example: herald backup --database", p.stdout)


if __name__ == "__main__":
    unittest.main()
