"""The audit trail: filters, the streamed export (every record once, in order, in bounded memory,
CSV that parses back) and the client CLI's export."""

import csv
import hashlib
import http.client
import io
import json
import os
import sqlite3
import subprocess
import time
import unittest
import urllib.parse

from harness import (HERALD_BIN, SLOW, SMS_AUTH, TOKENS, HeraldTestCase, event, wait_for,
                     whsec, write_config)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def canonical_hash(prev_hash, seq, at_ms, kind, actor, client, subject, data):
    """The chain's hash, as Herald computes it: length-prefixed fields after the previous hash."""
    out = b""
    for field in (prev_hash, str(seq), str(at_ms), kind, actor, client, subject, data):
        raw = field.encode()
        out += str(len(raw)).encode() + b":" + raw + b"\n"
    return hashlib.sha256(out).hexdigest()


def append_records(database, count, start_ms, step_ms=1000, payload=600):
    """Appends `count` chained records straight into a stopped daemon's database (the triggers
    forbid changes, not inserts). Odd records are about client acme, even about globex."""
    db = sqlite3.connect(database)
    seq, prev = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone() \
        or (0, "0" * 64)
    rows = []
    for i in range(count):
        seq += 1
        at = start_ms + i * step_ms
        client = "acme" if seq % 2 else "globex"
        # Commas, quotes and line breaks in the data: CSV must quote them.
        data = json.dumps({"n": i, "note": 'a, "b"\nc', "pad": "x" * payload},
                          separators=(",", ":"))
        h = canonical_hash(prev, seq, at, "test.bulk", "loader", client, f"s{seq}", data)
        rows.append((seq, at, "test.bulk", "loader", client, f"s{seq}", data, prev, h))
        prev = h
    db.executemany("INSERT INTO audit (seq, at, kind, actor, client_id, subject, data, "
                   "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()
    return seq


class AuditTest(HeraldTestCase):

    def start(self):
        h = self.start_stack()
        return h

    def page_all(self, h, **params):
        items, cursor = [], None
        while True:
            q = dict(params, limit=500)
            if cursor:
                q["cursor"] = cursor
            page = h.ok("GET", "/v1/audit?" + urllib.parse.urlencode(q), "audit")
            items += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return items

    def assert_bad(self, h, path, field):
        r = h.request("GET", path, "audit")
        self.assertEqual(r.status, 400, r.body)
        self.assertEqual(r.body["error"]["code"], "invalid_parameter", r.body)
        self.assertEqual(r.body["error"]["field"], field, r.body)

    def test_filters(self):
        h = self.start()
        self.setup_acme(h)
        h.ok("PUT", "/v1/clients/globex", "admin", {"name": "Globex"}, expect=201)
        h.ok("POST", "/v1/events", "ingest", event("e1"), expect=202)
        h.wait_deliveries(5)  # the trail stops growing
        everything = self.page_all(h)
        self.assertGreater(len(everything), 6)

        # kind, client and actor.
        puts = self.page_all(h, kind="client.put")
        self.assertEqual([r["subject"] for r in puts], ["acme", "globex"])
        globex = self.page_all(h, client="globex")
        self.assertEqual({r["client"] for r in globex}, {"globex"})
        self.assertEqual([r["kind"] for r in globex], ["client.put"])
        by_ingest = self.page_all(h, actor="ingest")
        self.assertEqual([r["kind"] for r in by_ingest], ["event.received"])
        self.assertEqual(self.page_all(h, kind="client.put", client="globex"), puts[1:])

        # since and until split the trail at a record's time: [since, until).
        middle = everything[len(everything) // 2]
        before = self.page_all(h, until=middle["at"])
        after = self.page_all(h, since=middle["at"])
        self.assertEqual(before + after, everything)
        self.assertEqual(self.page_all(h, since="2000-01-01T00:00:00Z",
                                       until="2000-01-02T00:00:00+02:00"), [])

        # A cursor pages through a filtered list too.
        page = h.ok("GET", "/v1/audit?kind=contact.put&limit=1", "audit")
        self.assertEqual(len(page["items"]), 1)
        rest = h.ok("GET", "/v1/audit?kind=contact.put&limit=1&cursor=" + page["next_cursor"],
                    "audit")
        self.assertEqual([r["subject"] for r in page["items"] + rest["items"]], ["dana", "lee"])

        # Bad values name their parameter, on the list and on the export alike.
        for base in ("/v1/audit?", "/v1/audit/export?format=jsonl&"):
            self.assert_bad(h, base + "since=yesterday", "since")
            self.assert_bad(h, base + "until=2026-13-01T00:00:00Z", "until")
            self.assert_bad(h, base + "since=2026-12-04T10:00:00Z&until=2026-12-04T09:00:00Z",
                            "until")
        self.assert_bad(h, "/v1/audit?limit=0", "limit")
        self.assert_bad(h, "/v1/audit?cursor=abc", "cursor")
        self.assert_bad(h, "/v1/audit/export", "format")
        self.assert_bad(h, "/v1/audit/export?format=xml", "format")
        self.assertEqual(h.request("GET", "/v1/audit/export?format=csv", "ingest").status, 403)

        # The export applies the same filters.
        r = h.request("GET", "/v1/audit/export?format=jsonl&client=globex", "audit")
        self.assertEqual(r.status, 200)
        lines = [json.loads(l) for l in r.body.splitlines()] if isinstance(r.body, str) \
            else [r.body]
        self.assertEqual([l["seq"] for l in lines], [g["seq"] for g in globex])

    def test_every_transition_is_recorded(self):
        h = self.start()
        secret = whsec()
        self.setup_acme(h, webhook_secret=secret, people=True, slack=False, plan={"rules": [
            {"id": "now", "phases": ["containment"], "roles": ["executive"],
             "channels": ["email"], "delay": "0s", "quiet_hours": "ignore"},
            {"id": "later", "phases": ["containment"], "roles": ["legal"],
             "channels": ["email"], "delay": "1h", "quiet_hours": "ignore"},
            {"id": "rooms", "phases": ["containment", "eradication"], "endpoints": ["siem"],
             "delay": "0s"}]})
        def ago(seconds):
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds))
        h.ok("POST", "/v1/events", "ingest", event("e1", occurred_at=ago(20)), expect=202)
        wait_for(lambda: len([d for d in h.deliveries(client="acme")
                              if d["status"] == "delivered"]) == 2, message="2 delivered")
        deliveries = {d["rule"]: d for d in h.deliveries(client="acme")}
        self.assertEqual(deliveries["later"]["status"], "scheduled")

        # The event (with the token's name) and the messages it planned, in one record.
        [received] = self.page_all(h, kind="event.received")
        self.assertEqual(received["actor"], "ingest")
        self.assertEqual(received["data"]["messages"], 3)
        [planned] = self.page_all(h, kind="messages.planned")
        self.assertEqual(planned["data"]["cause"], "event")
        self.assertEqual(planned["data"]["event_id"], "e1")
        self.assertEqual(planned["subject"], "INC-42")
        self.assertEqual(sorted(m["id"] for m in planned["data"]["messages"]),
                         sorted(d["id"] for d in deliveries.values()))
        self.assertEqual(planned["seq"], received["seq"] + 1)  # same transaction, in order

        # Rendered: which templates wrote it, and hashes of what was sent.
        rendered = {r["subject"]: r for r in self.page_all(h, kind="message.rendered")}
        self.assertEqual(set(rendered), {deliveries["now"]["id"], deliveries["rooms"]["id"]})
        for rule in ("now", "rooms"):
            detail = h.ok("GET", f"/v1/deliveries/{deliveries[rule]['id']}", "audit")
            data = rendered[detail["id"]]["data"]
            self.assertEqual(data["content_sha256"], detail["content"]["sha256"])
            self.assertEqual(data["body_sha256"], hashlib.sha256(
                detail["content"]["body"].encode()).hexdigest())
            self.assertEqual(data["templates"], detail["templates"])
        self.assertEqual(rendered[deliveries["now"]["id"]]["data"]["address"],
                         "dana@acme.example")
        self.assertTrue(any("@" in t for t in rendered[deliveries["now"]["id"]]["data"]
                            ["templates"]))
        attempts = self.page_all(h, kind="delivery.attempt")
        self.assertEqual(sorted((a["subject"], a["data"]["status"]) for a in attempts),
                         sorted((deliveries[r]["id"], "delivered") for r in ("now", "rooms")))

        # A newer event cancels what is still scheduled, and says which.
        h.ok("POST", "/v1/events", "ingest", event("e2", phase="eradication",
                                                   occurred_at=ago(10)),
             expect=202)
        [cancelled] = self.page_all(h, kind="messages.cancelled")
        self.assertEqual(cancelled["data"]["messages"], [deliveries["later"]["id"]])
        self.assertIn("e2", cancelled["data"]["reason"])
        self.assertEqual(h.ok("GET", f"/v1/deliveries/{deliveries['later']['id']}",
                              "audit")["status"], "cancelled")

        # Deleting the client cancels its pending messages, recorded under the admin's name.
        h.ok("POST", "/v1/events", "ingest", event("e3", incident="INC-43", occurred_at=ago(0)), expect=202)
        wait_for(lambda: len([d for d in h.deliveries(client="acme", incident="INC-43")
                              if d["status"] == "delivered"]) == 2,
                 message="INC-43's immediate messages delivered")
        later = [d for d in h.deliveries(client="acme", incident="INC-43")
                 if d["rule"] == "later"]
        h.ok("DELETE", "/v1/clients/acme", "admin", expect=204)
        cancelled = self.page_all(h, kind="messages.cancelled")[-1]
        self.assertEqual(cancelled["actor"], "admin")
        self.assertEqual(cancelled["data"]["messages"], [later[0]["id"]])
        self.assertEqual(cancelled["data"]["reason"], "the client was deleted")

        # Secrets appear nowhere in the trail: not the webhook secret, nor SMS or SMTP ones.
        r = h.request("GET", "/v1/audit/export?format=jsonl", "audit")
        text = r.body if isinstance(r.body, str) else json.dumps(r.body)
        self.assertIn("endpoint.put", text)
        self.assertNotIn(secret[len("whsec_"):], text)
        self.assertNotIn(SMS_AUTH, text)
        self.assertEqual(h.ok("GET", "/v1/audit/verify", "audit")["ok"], True)

    def test_retention_prunes_bodies_and_the_chain_still_verifies(self):
        self.mail = self.start_mail()
        self.hooks = self.start_hooks()
        self.config = write_config(self.workdir, self.mail.port, self.hooks.port,
                                   extra='[audit]\nretain_bodies = "3s"\nprune_interval = "1s"\n')
        h = self.herald = self.start_herald(self.config)
        self.setup_acme(h, slack=False)
        h.ok("POST", "/v1/events", "ingest", event("e1"), expect=202)
        delivered = h.wait_deliveries(4, client="acme")
        ids = sorted(d["id"] for d in delivered)
        # Right after delivery the text is there, and message.rendered holds its hash.
        first = h.ok("GET", f"/v1/deliveries/{ids[0]}", "audit")
        self.assertIsNotNone(first["content"]["body"])
        self.assertIs(first["content"]["pruned"], False)
        rendered = {r["subject"]: r["data"] for r in self.page_all(h, kind="message.rendered")}
        self.assertEqual(rendered[ids[0]]["body_sha256"],
                         hashlib.sha256(first["content"]["body"].encode()).hexdigest())

        def pruned():
            return sorted(m for r in self.page_all(h, kind="bodies.pruned")
                          for m in r["data"]["messages"])
        wait_for(lambda: pruned() == ids, timeout=30 * SLOW, message="every body pruned")
        for mid in ids:
            d = h.ok("GET", f"/v1/deliveries/{mid}", "audit")
            self.assertIsNone(d["content"]["body"])
            self.assertIsNone(d["content"]["subject"])
            self.assertIs(d["content"]["pruned"], True)
            # What is left proves who, when, on which channel, and which content.
            self.assertEqual(d["content"]["sha256"], rendered[mid]["content_sha256"])
            self.assertEqual(d["status"], "delivered")
        [record] = self.page_all(h, kind="bodies.pruned")[:1]
        self.assertEqual(record["actor"], "retention")
        self.assertEqual(record["client"], "acme")
        self.assertEqual(record["data"]["retain"], "3s")
        self.assertEqual(h.ok("GET", "/v1/audit/verify", "audit")["ok"], True)
        # The text is gone from the database file itself, not just from the API.
        db = sqlite3.connect(self.path("herald.db"))
        self.assertEqual(db.execute("SELECT COUNT(*) FROM messages WHERE body IS NOT NULL "
                                    "OR subject IS NOT NULL").fetchone()[0], 0)
        db.close()
        self.stop_herald(h)
        offline = subprocess.run([HERALD_BIN, "audit", "verify", "--database",
                                  self.path("herald.db")], capture_output=True, text=True)
        self.assertEqual(offline.returncode, 0, offline.stdout + offline.stderr)
        self.assertIn("audit chain ok", offline.stdout)

    def stream(self, h, path, sample=None, chunk=16 * 1024, pause_every=0):
        """GETs path, reading slowly; calls sample() every so often. Returns the body bytes."""
        conn = http.client.HTTPConnection("127.0.0.1", h.port, timeout=60 * SLOW)
        conn.request("GET", path, headers={"Authorization": f"Bearer {TOKENS['audit']}"})
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.getheader("Transfer-Encoding"), "chunked")
        self.assertIsNone(r.getheader("Content-Length"))
        out = io.BytesIO()
        n = 0
        while True:
            piece = r.read(chunk)
            if not piece:
                break
            out.write(piece)
            n += 1
            if pause_every and n % pause_every == 0:
                if sample:
                    sample()
                time.sleep(0.02)
        conn.close()
        return out.getvalue()

    def test_export_many_records_in_bounded_memory(self):
        h = self.start()
        h.ok("PUT", "/v1/clients/acme", "admin", {"name": "Acme"}, expect=201)
        self.stop_herald(h)
        total = 40_000
        start_ms = 1_780_000_000_000
        last = append_records(self.path("herald.db"), total, start_ms)
        h = self.start_herald(self.config, "herald2.log")
        self.assertEqual(h.ok("GET", "/v1/audit/verify", "audit"),
                         {"ok": True, "records": last})

        pid = h.proc.pid
        # Warm up the reader connections and the allocator with a few small requests first.
        for _ in range(3):
            h.ok("GET", "/v1/audit?limit=500", "audit")
        before = rss_kib(pid)
        samples = []
        body = self.stream(h, "/v1/audit/export?format=jsonl",
                           sample=lambda: samples.append(rss_kib(pid)), pause_every=50)
        during = max(samples)
        lines = body.decode().splitlines()
        self.assertEqual(len(lines), last)
        seqs = [json.loads(l)["seq"] for l in lines]
        self.assertEqual(seqs, list(range(1, last + 1)))  # each once, in order
        records = [json.loads(l) for l in lines]
        for prev, rec in zip(records, records[1:]):
            self.assertEqual(rec["prev_hash"], prev["hash"])
        print(f"\nexport of {last} records, {len(body) / 1e6:.1f} MB: daemon RSS before "
              f"{before / 1024:.1f} MiB, peak while streaming {during / 1024:.1f} MiB "
              f"({len(samples)} samples)")
        # The body is ~30 MB: holding it (or its records) would show; pages of 500 do not.
        self.assertLess(len(body), 60e6)
        self.assertGreater(len(body), 25e6)
        if SLOW == 1:  # sanitizer builds hold freed memory in quarantine (256 MB): no bound
            self.assertLess(during - before, 16 * 1024,
                            f"RSS grew from {before} to {during} KiB")

        # CSV: a header row, then the same records, RFC 4180 quoting that csv reads back.
        body = self.stream(h, "/v1/audit/export?format=csv", pause_every=0, chunk=256 * 1024)
        rows = list(csv.reader(io.StringIO(body.decode(), newline="")))
        self.assertEqual(rows[0], ["seq", "at", "kind", "actor", "client", "subject", "data",
                                   "prev_hash", "hash"])
        self.assertEqual(len(rows) - 1, last)
        for row, rec in zip(rows[1:], records):
            self.assertEqual(int(row[0]), rec["seq"])
            self.assertEqual(row[1:6], [rec["at"], rec["kind"], rec["actor"], rec["client"],
                                        rec["subject"]])
            self.assertEqual(json.loads(row[6]), rec["data"])
            self.assertEqual(row[7:], [rec["prev_hash"], rec["hash"]])
        # The chain can be recomputed from the CSV alone (times are whole seconds here).
        bulk = rows[-1]
        at_ms = start_ms + (int(bulk[0]) - (last - total) - 1) * 1000
        self.assertEqual(canonical_hash(bulk[7], int(bulk[0]), at_ms, *bulk[2:7]), bulk[8])

        # Filters on a long export: one client, one hour.
        since_ms = start_ms + 10_000 * 1000
        q = urllib.parse.urlencode({"format": "jsonl", "client": "acme",
                                    "since": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                           time.gmtime(since_ms / 1000)),
                                    "until": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                           time.gmtime(since_ms / 1000 + 3600))})
        got = [json.loads(l) for l in self.stream(h, "/v1/audit/export?" + q).splitlines()]
        self.assertEqual(len(got), 1800)
        self.assertTrue(all(r["client"] == "acme" for r in got))

        # The client CLI streams the same export to standard output.
        env = dict(os.environ, HERALD_URL=f"http://127.0.0.1:{h.port}",
                   HERALD_TOKEN=TOKENS["audit"])
        cli = subprocess.run([HERALD_BIN, "audit", "export", "--format", "csv", "--client",
                              "globex"], env=env, capture_output=True, timeout=120 * SLOW)
        self.assertEqual(cli.returncode, 0, cli.stderr)
        rows = list(csv.reader(io.StringIO(cli.stdout.decode(), newline="")))
        self.assertEqual(len(rows) - 1, total // 2)
        self.assertEqual({r[4] for r in rows[1:]}, {"globex"})
        out = self.path("all.jsonl")
        cli = subprocess.run([HERALD_BIN, "audit", "export", "--format", "jsonl", "--output", out],
                             env=env, capture_output=True, timeout=120 * SLOW)
        self.assertEqual(cli.returncode, 0, cli.stderr)
        self.assertIn(f"exported {last} audit records", cli.stdout.decode())
        with open(out) as f:
            self.assertEqual(sum(1 for _ in f), last)


if __name__ == "__main__":
    unittest.main()
