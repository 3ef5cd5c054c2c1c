"""A real Prometheus Alertmanager (Debian's prometheus-alertmanager) with Herald as its webhook
receiver, configured as docs/api.md shows: a posted alert becomes an `identification` event,
its repeated notifications create nothing new, and resolving it gives `recovery`."""

import datetime
import json
import unittest
import urllib.request

from harness import (DELIVERY_TIMEOUT, START_TIMEOUT, TOKENS, Child, HeraldTestCase, closed_port,
                     wait_for)

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"

# The receiver of docs/api.md, with Herald's test address, and intervals short enough for a test.
CONFIG = """\
route:
  receiver: herald
  group_by: ["alertname"]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 2s
receivers:
  - name: herald
    webhook_configs:
      - url: "http://127.0.0.1:{port}/v1/sources/alertmanager?client=acme"
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: {token_file}
"""


def now_rfc3339(offset_seconds=0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset_seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AlertmanagerServerTest(HeraldTestCase):

    def start_alertmanager(self, herald_port):
        token_file = self.path("herald-token")
        with open(token_file, "w") as f:
            f.write(TOKENS["ingest"] + "\n")
        config = self.path("alertmanager.yml")
        with open(config, "w") as f:
            f.write(CONFIG.format(port=herald_port, token_file=token_file))
        self.am_port = closed_port()
        child = Child("alertmanager", [
            ALERTMANAGER, f"--config.file={config}", f"--storage.path={self.path('am-data')}",
            f"--web.listen-address=127.0.0.1:{self.am_port}", "--cluster.listen-address=",
            "--log.level=debug"], self.path("alertmanager.log"))
        self.addCleanup(child.stop)

        def ready():
            if child.proc.poll() is not None:
                raise AssertionError(f"alertmanager exited:\n{child.log_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.am_port}/-/ready",
                                            timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_for(ready, START_TIMEOUT, "alertmanager to be ready", interval=0.2)
        return child

    def am(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.am_port}{path}", data=data,
                                     method=method,
                                     headers={"Content-Type": "application/json"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=10) as r:
            text = r.read().decode()
            return json.loads(text) if text and path.startswith("/api/") else text

    def notifications_sent(self):
        for line in self.am("GET", "/metrics").splitlines():
            if line.startswith('alertmanager_notifications_total{integration="webhook"}'):
                return float(line.split(" ")[1])
        return 0.0

    def herald_metric(self, name):
        for line in self.h.request("GET", "/metrics").body.splitlines():
            if line.startswith(name + " "):
                return float(line.split(" ")[1])
        return 0.0

    def test_alert_to_identification_repeats_to_nothing_resolved_to_recovery(self):
        h = self.h = self.start_stack()
        self.setup_acme(h, people=False, webhook=False, plan={"rules": [
            {"id": "soc", "phases": ["identification", "recovery"], "endpoints": ["soc-slack"]}]})
        self.start_alertmanager(h.port)

        starts = now_rfc3339(-5)
        alert = {"labels": {"alertname": "DiskEncrypting", "severity": "critical",
                            "host": "FS01"},
                 "annotations": {"summary": "Mass encryption on FS01",
                                 "description": "1,200 files renamed in a minute"},
                 "startsAt": starts, "generatorURL": "http://prometheus.example:9090/graph"}
        self.am("POST", "/api/v2/alerts", [alert])

        [delivery] = h.wait_deliveries(1, client="acme")
        self.assertEqual(delivery["phase"], "identification")
        incident_id = delivery["incident"]
        incident = h.ok("GET", f"/v1/incidents/{incident_id}?client=acme", "audit")
        self.assertEqual(incident["phase"], "identification")
        self.assertEqual(incident["severity"], "critical")
        self.assertEqual(incident["title"], "Mass encryption on FS01")
        [slack] = self.hooks.requests()
        self.assertIn("Mass encryption on FS01", json.loads(slack["body"])["text"])

        # Alertmanager repeats the notification while the alert fires: Herald answers each as a
        # duplicate and sends nothing more.
        wait_for(lambda: self.notifications_sent() >= 3, DELIVERY_TIMEOUT,
                 "Alertmanager to repeat its notification")
        wait_for(lambda: self.herald_metric('herald_events_total{outcome="duplicate"}') >= 2,
                 DELIVERY_TIMEOUT, "Herald to see the repeats")
        self.assertEqual(len(h.deliveries(client="acme")), 1)
        self.assertEqual(len(self.hooks.requests()), 1)
        events = [e for e in h.ok("GET", "/v1/audit?kind=event.received", "audit")["items"]]
        self.assertEqual(len(events), 1, events)
        self.assertEqual(events[0]["data"]["source"], "alertmanager")
        self.assertEqual(events[0]["actor"], "ingest")

        # Resolved: an end time in the past.
        alert["endsAt"] = now_rfc3339(-1)
        self.am("POST", "/api/v2/alerts", [alert])
        deliveries = h.wait_deliveries(2, client="acme")
        self.assertEqual(sorted(d["phase"] for d in deliveries), ["identification", "recovery"])
        incident = h.ok("GET", f"/v1/incidents/{incident_id}?client=acme", "audit")
        self.assertEqual(incident["phase"], "recovery")
        wait_for(lambda: len(self.hooks.requests()) == 2, message="the recovery message")


if __name__ == "__main__":
    unittest.main()
