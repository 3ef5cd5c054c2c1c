"""Soak, short: steady events in and deliveries out to real loopback receivers (SMTP, a
healthy webhook, one answering 429/5xx to 30 % of attempts, one resetting 10 % of
connections) for 36 s; herald's open file descriptors other than sockets must not grow, nor,
outside sanitizer builds, its heap in use (malloc's own count of live bytes; the last third of
the run against the first), its resident memory must stay under a ceiling, and its sockets
within what the delivery settings allow (connections in flight and kept for reuse), however
long it runs. The hour-long run is bench/soak.py, which this test shares its load, sampling
and criteria with.

HERALD_SOAK_SECONDS sets the duration; the rate is 20 events/s divided by HERALD_E2E_SLOW.
"""

import os
import sys
import unittest

from harness import SLOW, SOURCE_DIR, HeraldTestCase, wait_for, write_config

sys.path.insert(0, os.path.join(SOURCE_DIR, "bench"))
import soak  # noqa: E402

SECONDS = float(os.environ.get("HERALD_SOAK_SECONDS") or 36)
RATE = 20.0 / SLOW


class FlatTest(unittest.TestCase):
    """The criterion itself: a test whose check cannot fail is worthless."""

    def test_a_steady_series_is_flat(self):
        warm_up = [100, 140, 170, 180, 182, 181]
        steady = [183, 182, 184, 183, 182, 184, 183, 181, 184]
        self.assertTrue(soak.flat(warm_up + steady, 8)[0])

    def test_one_fd_per_forty_events_is_a_leak(self):
        leaking = [20 + n // 2 for n in range(36)]  # one fd every 2 s: every 40 events
        ok, first, last = soak.flat(leaking, soak.FD_SLACK)
        self.assertFalse(ok, (first, last))

    def test_a_few_kilobytes_per_message_are_a_leak(self):
        # 100 messages/s for 36 s, 3 KiB kept of each, on a 10 MiB heap. (Less is lost in the
        # SQLite page caches' legitimate growth; bench/soak.py runs for an hour.)
        leaking = [10 * 1024 + 900 * n for n in range(12)]  # heap KiB, every 3 s
        self.assertFalse(soak.flat(leaking, soak.HEAP_SLACK_KIB, soak.HEAP_SLACK_RATIO)[0])


    def test_sockets_past_the_bound_and_growing_files_fail_the_check(self):
        class Samples:
            def __init__(self, **series):
                self.data = series

            def series(self, key):
                return self.data[key]

        class NoRefusals:
            refused = []

        n = 36
        steady = dict(files=[15] * n, VmRSS=[25 * 1024] * n, heap=[9 * 1024] * 12)
        ok = Samples(sockets=[4 + i % soak.SOCKET_BOUND for i in range(n)], **steady)
        self.assertEqual(soak.check(ok, NoRefusals, {"delivered": 1}, True), [])
        too_many = Samples(sockets=[4] * (n - 1) + [soak.SOCKET_BOUND + 1], **steady)
        self.assertEqual(len(soak.check(too_many, NoRefusals, {"delivered": 1}, True)), 1)
        leaking = dict(steady, files=[15 + i // 2 for i in range(n)])
        growing = Samples(sockets=[4] * n, **leaking)
        self.assertEqual(len(soak.check(growing, NoRefusals, {"delivered": 1}, True)), 1)
        swollen = Samples(sockets=[4] * n, **dict(steady, VmRSS=[soak.RSS_CEILING_KIB + 1] * n))
        self.assertEqual(len(soak.check(swollen, NoRefusals, {"delivered": 1}, True)), 1)


class SoakTest(HeraldTestCase):

    def test_steady_load_keeps_fds_and_memory_flat(self):
        mail = self.start_mail()
        hooks = self.start_hooks()
        faults, faults_port = soak.start_fault_receiver(self.workdir)
        self.addCleanup(faults.stop)
        h = self.start_herald(write_config(self.workdir, mail.port, hooks.port,
                                           delivery=soak.DELIVERY))
        soak.setup_acme(h, hooks.base, f"http://127.0.0.1:{faults_port}")
        rss_meaningful = not soak.sanitized(h.proc.pid)

        sampler = soak.Sampler(h.proc.pid, heap=lambda: soak.heap_kib(h))
        load = soak.Load(h, RATE)
        sampler.start()
        load.start()
        try:
            load.join(SECONDS)
        finally:
            load.stop()
            sampler.stop()
        counts = wait_for(lambda: soak.drained(h), 60 * SLOW, "every message to finish")
        _, failed_attempts = soak.message_counts(h)

        fds, rss = sampler.series("fds"), sampler.series("VmRSS")
        sockets, heap = sampler.series("sockets"), sampler.series("heap")
        print(f"\nsoak: {load.posted} events in {SECONDS:.0f} s, messages {counts}, "
              f"{failed_attempts} failed attempts; fds {min(fds)}..{max(fds)} (sockets "
              f"{min(sockets)}..{max(sockets)}), RSS "
              f"{min(rss) // 1024}..{max(rss) // 1024} MiB, heap in use "
              f"{min(heap) // 1024}..{max(heap) // 1024} MiB"
              + ("" if rss_meaningful else " (sanitizer build: memory not checked)"),
              file=sys.stderr)
        self.assertGreaterEqual(load.posted, RATE * SECONDS * 0.8, "the load fell behind")
        self.assertGreater(failed_attempts, 0, "no attempt failed: the retries were not tested")
        self.assertGreater(counts.get("cancelled", 0), 0, "no message was superseded")
        self.assertGreater(len(mail.records()), 0)
        self.assertGreater(len(hooks.requests("/hooks/siem")), 0)
        problems = soak.check(sampler, load, counts, rss_meaningful)
        self.assertEqual(problems, [])


if __name__ == "__main__":
    unittest.main()
