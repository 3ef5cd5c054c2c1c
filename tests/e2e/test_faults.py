"""Fault injection: misbehaving receivers, a full disk, a database locked by another process.

(a) Receivers that answer slowly, hang, reset the connection or answer 429/5xx at random
    (seeded: HERALD_FAULT_SEED, printed): every message ends delivered, or failed where the
    receiver refuses for good (400), and the healthy receiver is not held up by the others.
(b) A full disk: the database on a small tmpfs (root only; skipped with a message otherwise)
    filled up by a ballast file: ingest answers 503, never 202 without the event stored, and
    takes events again once the ballast is gone; no acknowledged event is lost.
(c) The database locked by another process (BEGIN EXCLUSIVE): ingest answers 503 within a
    bounded time instead of hanging, and takes events again when the lock is gone.
"""

import errno
import os
import random
import sqlite3
import subprocess
import sys
import time
import unittest

from harness import (HERALD_BIN, PYTHON, SLOW, HeraldTestCase, closed_port, event, read_jsonl,
                     wait_for, whsec, write_config)
from test_crash import now_rfc3339, start_receiver

FAST = {"max_backoff": "1s", "attempt_timeout": "2s", "breaker_cool_down": "1s",
        "breaker_max_cool_down": "2s", "concurrency": 16}


def fresh(n, **kw):
    """Event n of its own incident (a later event of one incident supersedes unsent ones)."""
    return event(f"evt-{n}", incident=f"INC-{n}", occurred_at=now_rfc3339(), **kw)


class FaultTest(HeraldTestCase):

    def herald(self, delivery=None, database=None):
        config = write_config(self.workdir, closed_port(), closed_port(), database=database,
                              delivery=delivery or FAST)
        return self.start_herald(config), config

    def plan(self, h, urls):
        h.ok("PUT", "/v1/clients/acme", "admin", {"name": "Acme Corp"})
        for name, url in urls.items():
            h.ok("PUT", f"/v1/clients/acme/endpoints/{name}", "admin",
                 {"type": "webhook", "url": url, "secret": whsec()})
        h.ok("PUT", "/v1/clients/acme/plan", "admin", {"rules": [
            {"id": "all", "phases": ["containment"], "min_severity": "low",
             "endpoints": sorted(urls), "delay": "0s"}]})

    def test_misbehaving_receivers(self):
        seed = int(os.environ.get("HERALD_FAULT_SEED") or random.SystemRandom().randrange(1 << 31))
        events = int(os.environ.get("HERALD_FAULT_EVENTS") or 20)
        print(f"\nfault test: seed {seed} (rerun: HERALD_FAULT_SEED={seed})", file=sys.stderr,
              flush=True)
        # One receiver per behaviour: breakers are per host:port.
        behaviours = {"healthy": "ok", "slow": "slow/1000", "hang": "hang/30",
                      "reset": "reset/40", "flaky": "flaky/50", "refuses": "status/400"}
        receivers = {}
        for name, path in behaviours.items():
            port, out = start_receiver(self, name, seed)
            receivers[name] = (f"http://127.0.0.1:{port}/{path}/{name}", out)
        h, _ = self.herald()
        self.plan(h, {name: url for name, (url, _) in receivers.items()})

        posted = {}
        for i in range(events):
            body = fresh(i)
            posted[body["event_id"]] = time.time()
            r = h.request("POST", "/v1/events", "ingest", body)
            self.assertEqual(r.status, 202, r.body)
            self.assertEqual(r.body["messages"], len(behaviours))

        total = events * len(behaviours)
        final = {}

        def settled():
            items = h.deliveries(client="acme")
            final.clear()
            final.update({d["id"]: d for d in items})
            return len(items) == total and all(d["status"] in ("delivered", "failed")
                                               for d in items)

        try:
            wait_for(settled, 90 * SLOW, "every message to settle", interval=0.5)
        except AssertionError:
            counts = {}
            for d in final.values():
                counts[d["status"]] = counts.get(d["status"], 0) + 1
            raise AssertionError(f"seed {seed}: not settled: {counts}") from None

        summary = {}
        for name, (url, out) in receivers.items():
            records = read_jsonl(out)
            by_id = {}
            for r in records:
                by_id.setdefault(r["id"], []).append(r)
            self.assertEqual(len(by_id), events, f"seed {seed}: {name}: {len(by_id)} ids")
            self.assertEqual({c[0]["event"] for c in by_id.values()}, set(posted))
            for msg_id, copies in by_id.items():
                d = final[msg_id]
                self.assertEqual(len({c["sha"] for c in copies}), 1, f"{name} {msg_id}")
                if name == "refuses":
                    self.assertEqual(d["status"], "failed", f"seed {seed}: {d}")
                    self.assertEqual(len(copies), 1, f"seed {seed}: a 400 is not retried")
                else:
                    self.assertEqual(d["status"], "delivered", f"seed {seed}: {name}: {d}")
                    # Delivered by the last attempt, after every failure the receiver chose.
                    self.assertEqual(copies[-1]["action"], "ok", f"seed {seed}: {copies}")
                    self.assertTrue(all(c["action"] != "ok" for c in copies[:-1]),
                                    f"seed {seed}: retried after success: {copies}")
                # One request per attempt; libcurl sends a request again, once, on a fresh
                # connection when a reused one is reset before any answer: same id, same body.
                if name == "reset":
                    self.assertGreaterEqual(len(copies), d["attempts"], f"seed {seed}: {d}")
                else:
                    self.assertEqual(d["attempts"], len(copies), f"seed {seed}: {name}: {d}")
            summary[name] = (len(records), max(len(c) for c in by_id.values()))
            if name == "healthy":
                # Not held up by the hanging, slow and failing receivers beside it.
                lag = max(c[0]["t"] - posted[c[0]["event"]] for c in by_id.values())
                self.assertLess(lag, 2.0 * SLOW, f"seed {seed}: healthy receiver lagged")
                summary["healthy lag"] = f"{lag:.2f} s"
        print(f"fault test: seed {seed}: {events} events x {len(behaviours)} receivers: "
              f"(requests, most attempts of one message) {summary}", file=sys.stderr,
              flush=True)
        self.assertIs(h.ok("GET", "/v1/audit/verify", "audit")["ok"], True)

    def post_until(self, h, body, statuses, timeout):
        """Posts body until the answer's status is in statuses; returns the answers seen."""
        seen = []

        def answered():
            r = h.request("POST", "/v1/events", "ingest", body, timeout=30 * SLOW)
            seen.append(r.status)
            return r if r.status in statuses else None

        return wait_for(answered, timeout, f"an answer in {statuses}", interval=0.2), seen

    def check_database(self, h, db, acked, hooks_out):
        """Every acknowledged event's message arrived; the database is sound."""
        def arrived():
            return set(acked) <= {r["event"] for r in read_jsonl(hooks_out)}

        try:
            wait_for(arrived, 60 * SLOW, f"{len(acked)} acknowledged events to arrive",
                     interval=0.2)
        except AssertionError:
            missing = set(acked) - {r["event"] for r in read_jsonl(hooks_out)}
            items = [(d["event_id"], d["status"], d["attempts"], d["send_at"], d["last_error"])
                     for d in h.deliveries(client="acme") if d["event_id"] in missing]
            raise AssertionError(f"acknowledged events that never arrived: {sorted(missing)}; "
                                 f"their messages: {items}") from None
        self.stop_herald(h)
        with sqlite3.connect(db) as conn:
            self.assertEqual(conn.execute("PRAGMA integrity_check").fetchall(), [("ok",)])
            stored = {row[0] for row in conn.execute("SELECT event_id FROM events")}
        self.assertLessEqual(set(acked), stored)
        verify = subprocess.run([HERALD_BIN, "audit", "verify", "--database", db],
                                capture_output=True, text=True, timeout=60 * SLOW)
        self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)

    def test_full_disk(self):
        disk = self.path("disk")
        os.mkdir(disk)
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", disk],
                                 capture_output=True, text=True)
        if mounted.returncode != 0:
            self.skipTest("full disk: cannot mount a small tmpfs here (needs root): "
                          + (mounted.stderr.strip() or mounted.stdout.strip()))
        self.addCleanup(subprocess.run, ["umount", "-l", disk], capture_output=True)
        port, out = start_receiver(self, "hooks")
        db = os.path.join(disk, "herald.db")
        h, _ = self.herald(database=db)
        self.plan(h, {"siem": f"http://127.0.0.1:{port}/ok/siem"})

        big = {"blob": "x" * 20000}  # each event a little over 20 kB in the database
        acked, refused, answers = [], [], {}
        n = 0

        def post(body):
            r = h.request("POST", "/v1/events", "ingest", body, timeout=30 * SLOW)
            answers[r.status] = answers.get(r.status, 0) + 1
            self.assertIn(r.status, (200, 202, 503), f"after {n} events: {r}")
            if r.status in (200, 202):
                acked.append(body["event_id"])
            else:
                self.assertEqual(r.body["error"]["code"], "storage_unavailable", r.body)
                refused.append(body)
            return r.status

        for n in range(5):
            self.assertEqual(post(fresh(n, details=big)),
                             202)
        # Fill the disk with a ballast file.
        ballast = os.path.join(disk, "ballast")
        fd = os.open(ballast, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 65536)
        except OSError as e:
            self.assertEqual(e.errno, errno.ENOSPC)
        finally:
            os.close(fd)
        # Keep posting until ingest refuses: the space SQLite already had runs out quickly.
        for n in range(5, 200):
            if post(fresh(n, details=big)) == 503:
                break
        else:
            self.fail("ingest never refused an event on a full disk")
        for n in range(n + 1, n + 6):  # still full: still refused, still answering
            self.assertEqual(post(fresh(n, details=big)),
                             503)
        self.assertTrue(h.running, "herald died on a full disk")

        os.unlink(ballast)
        # Space is back: the producer's retries are taken (200 if one had been stored).
        for body in refused:
            r, _ = self.post_until(h, body, (200, 202), 30 * SLOW)
            acked.append(body["event_id"])
        self.assertEqual(post(fresh("after")), 202)
        print(f"\nfull disk: answers {answers}, {len(acked)} events acknowledged in the end",
              file=sys.stderr, flush=True)
        self.check_database(h, db, acked, out)

    def test_database_locked_by_another_process(self):
        port, out = start_receiver(self, "hooks")
        db = self.path("herald.db")
        h, _ = self.herald(database=db)
        # The slow receiver answers 1.5 s after the request: its outcome is to be recorded
        # while the database is locked.
        self.plan(h, {"siem": f"http://127.0.0.1:{port}/ok/siem",
                      "slow": f"http://127.0.0.1:{port}/slow/1500/slow"})
        acked = []
        r = h.request("POST", "/v1/events", "ingest", fresh(0))
        self.assertEqual(r.status, 202, r.body)
        acked.append("evt-0")
        wait_for(lambda: any(r["path"].startswith("/slow/") for r in read_jsonl(out)),
                 message="the slow receiver to get its request")

        locker = subprocess.Popen(
            [PYTHON, "-c", "import sqlite3, sys\n"
             "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
             "c.execute('BEGIN EXCLUSIVE')\n"
             "print('locked', flush=True)\n"
             "sys.stdin.read()\n"
             "c.execute('ROLLBACK')\n", db],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(locker.stdout.close)
        self.addCleanup(locker.wait)
        self.addCleanup(lambda: locker.stdin.closed or locker.stdin.close())
        self.assertEqual(locker.stdout.readline().strip(), "locked")

        body = fresh(1)
        started = time.monotonic()
        r = h.request("POST", "/v1/events", "ingest", body, timeout=60 * SLOW)
        took = time.monotonic() - started
        self.assertEqual(r.status, 503, r.body)
        self.assertEqual(r.body["error"]["code"], "storage_unavailable", r.body)
        self.assertLess(took, 12 * SLOW, "ingest waited too long for the lock")
        self.assertTrue(h.running)
        # The slow answer came meanwhile; its outcome could not be written.
        wait_for(lambda: "cannot record 1 delivery outcomes" in h.log_text(), 30 * SLOW,
                 "the dispatcher to fail to record the slow outcome")

        locker.stdin.close()
        locker.wait(10)
        r, _ = self.post_until(h, body, (200, 202), 30 * SLOW)
        acked.append("evt-1")
        r = h.request("POST", "/v1/events", "ingest", fresh(2))
        self.assertEqual(r.status, 202, r.body)
        acked.append("evt-2")
        # Written again once the lock is gone: nothing stays `sending` until a restart.
        h.wait_deliveries(2 * len(acked), client="acme")
        print(f"\nlocked database: 503 after {took:.1f} s, then taken again", file=sys.stderr,
              flush=True)
        self.check_database(h, db, acked, out)


if __name__ == "__main__":
    unittest.main()
