"""Crash safety: a webhook fan-out while herald is killed with SIGKILL at random moments.

A producer posts events concurrently; herald is killed several times and restarted on the
same database. At the end every message of every event the producer saw acknowledged (202 or
200) has reached its receiver at least once; a message that arrived twice carries the same id
and body both times, and there are no more duplicates than sends that can be in flight at a
kill; PRAGMA integrity_check is ok and `herald audit verify --database` passes.

Small by default (make test). Larger by environment:
  HERALD_CRASH_EVENTS (50), HERALD_CRASH_RECIPIENTS (20), HERALD_CRASH_KILLS (5),
  HERALD_CRASH_SEED (random; printed, so a failure can be rerun with the same one).
"""

import datetime
import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
import unittest

from harness import (HERALD_BIN, PYTHON, SLOW, Child, HeraldTestCase, closed_port, event,
                     read_jsonl, wait_for, wait_port_file, whsec, write_config)

RECEIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fault_receiver.py")
CONCURRENCY = 16


def env_int(name, default):
    return int(os.environ.get(name) or default)


def start_receiver(test, name, seed=0):
    out = test.path(name + ".jsonl")
    port_file = test.path(name + ".port")
    child = Child(name, [PYTHON, RECEIVER, "--port-file", port_file, "--out", out,
                         "--seed", str(seed)], test.path(name + ".log"))
    test.addCleanup(child.stop)
    return wait_port_file(child, port_file), out


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Producer:
    """Threads that post every event until it is acknowledged, whatever herald is doing."""

    def __init__(self, herald, bodies, threads, interval):
        self.herald = herald
        self.todo = list(reversed(bodies))
        self.lock = threading.Lock()
        self.acked = {}  # event_id -> (status, messages)
        self.refused = 0  # answers that were not an acknowledgement (connection lost, 503)
        self.interval = interval
        self.deadline = time.monotonic() + 300 * SLOW
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def start(self):
        for t in self.threads:
            t.start()

    def run(self):
        while time.monotonic() < self.deadline:
            with self.lock:
                if not self.todo:
                    return
                body = self.todo.pop()
            while time.monotonic() < self.deadline:
                try:
                    r = self.herald.request("POST", "/v1/events", "ingest", body, timeout=10 * SLOW)
                    status = r.status
                except Exception:  # refused, reset, or cut off mid-answer
                    status = None
                if status in (200, 202):
                    with self.lock:
                        self.acked[body["event_id"]] = (status, r.body["messages"])
                    break
                if status is not None and status not in (503,):
                    raise AssertionError(f"unexpected answer to an event: {r}")
                with self.lock:
                    self.refused += 1
                time.sleep(0.05)
            time.sleep(self.interval)

    def join(self, timeout):
        end = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, end - time.monotonic()))
        return not any(t.is_alive() for t in self.threads)


class CrashTest(HeraldTestCase):

    def test_sigkill_during_fan_out(self):
        events = env_int("HERALD_CRASH_EVENTS", 50)
        recipients = env_int("HERALD_CRASH_RECIPIENTS", 20)
        kills = env_int("HERALD_CRASH_KILLS", 5)
        seed = env_int("HERALD_CRASH_SEED", random.SystemRandom().randrange(1, 1 << 31))
        print(f"\ncrash test: seed {seed} (rerun: HERALD_CRASH_SEED={seed} "
              f"HERALD_CRASH_EVENTS={events} HERALD_CRASH_RECIPIENTS={recipients} "
              f"HERALD_CRASH_KILLS={kills})", file=sys.stderr, flush=True)
        rng = random.Random(seed)
        started = time.monotonic()

        port, out = start_receiver(self, "receiver", seed)
        config = write_config(self.workdir, closed_port(), closed_port(),
                              listen=f"127.0.0.1:{closed_port()}",
                              delivery={"concurrency": CONCURRENCY, "max_backoff": "1s"})
        h = self.start_herald(config)
        h.ok("PUT", "/v1/clients/acme", "admin", {"name": "Acme Corp"})
        endpoints = [f"ep{k:03d}" for k in range(recipients)]
        for name in endpoints:
            h.ok("PUT", f"/v1/clients/acme/endpoints/{name}", "admin",
                 {"type": "webhook", "url": f"http://127.0.0.1:{port}/ok/{name}",
                  "secret": whsec()})
        h.ok("PUT", "/v1/clients/acme/plan", "admin", {"rules": [
            {"id": "everyone", "phases": ["containment"], "min_severity": "low",
             "endpoints": endpoints, "delay": "0s"}]})

        bodies = [event(f"evt-{seed}-{i:05d}", incident=f"INC-{i}", occurred_at=now_rfc3339())
                  for i in range(events)]
        # Posting is spread over about the time the kills take, so they land mid-ingest too.
        lifetimes = [rng.uniform(0.2, 1.2) * SLOW for _ in range(kills)]
        producer = Producer(h, bodies, threads=4,
                            interval=4 * sum(lifetimes) / max(events, 1))
        producer.start()
        restarts = []
        for n, life in enumerate(lifetimes):
            time.sleep(life)
            h.kill()
            t0 = time.monotonic()
            h.start()
            restarts.append(time.monotonic() - t0)

        self.assertTrue(producer.join(120 * SLOW), "the producer did not finish")
        self.assertEqual(len(producer.acked), events, "every event is acknowledged in the end")
        for event_id, (status, messages) in producer.acked.items():
            self.assertEqual(messages, recipients, (event_id, status))

        # Every acknowledged event's message reached each of its receivers.
        want = {(e, f"/ok/{name}") for e in producer.acked for name in endpoints}
        patience = (60 + len(want) / 100) * SLOW
        records = []

        def all_arrived():
            nonlocal records
            records = read_jsonl(out)
            return want <= {(r["event"], r["path"]) for r in records}

        try:
            wait_for(all_arrived, patience, f"{len(want)} messages to arrive", interval=0.2)
        except AssertionError:
            got = {(r["event"], r["path"]) for r in records}
            missing = sorted(want - got)
            statuses = {}
            for d in h.deliveries(client="acme"):
                statuses[d["status"]] = statuses.get(d["status"], 0) + 1
            raise AssertionError(f"seed {seed}: {len(missing)} of {len(want)} messages never "
                                 f"arrived in {patience:.0f} s, e.g. {missing[:5]}; herald's "
                                 f"deliveries by status: {statuses}") from None

        items = h.wait_deliveries(events * recipients, client="acme", timeout=patience)
        known = {d["id"]: d for d in items}
        time.sleep(0.5)  # nothing more should come
        records = read_jsonl(out)
        by_id = {}
        for r in records:
            by_id.setdefault(r["id"], []).append(r)
        # No message under an id herald does not know; every id its own event and receiver.
        self.assertEqual(set(by_id), set(known), f"seed {seed}")
        for msg_id, copies in by_id.items():
            d = known[msg_id]
            self.assertEqual({(c["event"], c["path"], c["sha"]) for c in copies}.__len__(), 1,
                             f"seed {seed}: copies of {msg_id} differ: {copies}")
            self.assertEqual(copies[0]["event"], d["event_id"])
        duplicates = len(records) - len(by_id)
        # A duplicate is a send in flight (or answered, not yet recorded) at a kill: at most
        # `concurrency` of them per kill.
        self.assertLessEqual(duplicates, kills * CONCURRENCY, f"seed {seed}")

        self.stop_herald(h)
        db = self.path("herald.db")
        with sqlite3.connect(db) as conn:
            self.assertEqual(conn.execute("PRAGMA integrity_check").fetchall(), [("ok",)])
        verify = subprocess.run([HERALD_BIN, "audit", "verify", "--database", db],
                                capture_output=True, text=True, timeout=60 * SLOW)
        self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)

        took = time.monotonic() - started
        print(f"crash test: seed {seed}: {events} events x {recipients} webhook recipients = "
              f"{events * recipients} messages, {kills} SIGKILLs (restarts took "
              f"{', '.join(f'{r:.2f}' for r in restarts)} s), {producer.refused} posts refused "
              f"or cut off and retried, {len(records)} requests received, {duplicates} "
              f"duplicates (same id, same body), integrity ok, audit chain ok, "
              f"{took:.1f} s", file=sys.stderr, flush=True)


if __name__ == "__main__":
    unittest.main()
