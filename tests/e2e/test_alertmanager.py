"""POST /v1/sources/alertmanager: Alertmanager's webhook payload (version 4) becomes events."""

import copy
import json
import unittest

from harness import HeraldTestCase, wait_for

PAYLOAD = {
    "version": "4", "groupKey": "{}:{alertname=\"DiskEncrypting\"}", "truncatedAlerts": 0,
    "status": "firing", "receiver": "herald",
    "groupLabels": {"alertname": "DiskEncrypting"},
    "commonLabels": {"alertname": "DiskEncrypting", "severity": "critical"},
    "commonAnnotations": {}, "externalURL": "http://alertmanager.example:9093",
    "alerts": [{
        "status": "firing",
        "labels": {"alertname": "DiskEncrypting", "severity": "critical", "host": "FS01"},
        "annotations": {"summary": "Mass encryption on FS01",
                        "description": "1,200 files renamed in a minute"},
        "startsAt": "2026-12-04T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example:9090/graph",
        "fingerprint": "c0ffee00c0ffee00"}],
}


class AlertmanagerTest(HeraldTestCase):

    def setUp(self):
        self.h = self.start_stack()
        # The SOC room hears about identification and recovery of anything.
        self.setup_acme(self.h, people=False, webhook=False, plan={"rules": [
            {"id": "soc", "phases": ["identification", "recovery"], "endpoints": ["soc-slack"]}]})

    def post(self, payload, query="?client=acme", token="ingest"):
        return self.h.request("POST", "/v1/sources/alertmanager" + query, token, payload)

    def test_firing_then_resolved(self):
        h = self.h
        r = self.post(PAYLOAD)
        self.assertEqual(r.status, 202, r.body)
        [first] = r.body["events"]
        self.assertEqual(first["messages"], 1)
        self.assertFalse(first["duplicate"])
        h.wait_deliveries(1, client="acme")
        slack = self.hooks.requests()
        self.assertEqual(len(slack), 1)
        self.assertIn("Mass encryption on FS01", json.loads(slack[0]["body"])["text"])
        incident = h.ok("GET", "/v1/incidents/" + first["incident"] + "?client=acme", "audit")
        self.assertEqual(incident["phase"], "identification")
        self.assertEqual(incident["severity"], "critical")

        # Alertmanager repeats a notification for an alert still firing: nothing new.
        again = self.post(PAYLOAD)
        self.assertEqual(again.status, 200, again.body)
        self.assertTrue(again.body["events"][0]["duplicate"])

        resolved = copy.deepcopy(PAYLOAD)
        resolved["status"] = "resolved"
        resolved["alerts"][0]["status"] = "resolved"
        resolved["alerts"][0]["endsAt"] = "2026-12-04T11:00:00Z"
        r = self.post(resolved)
        self.assertEqual(r.status, 202, r.body)
        h.wait_deliveries(2, client="acme")
        incident = h.ok("GET", "/v1/incidents/" + first["incident"] + "?client=acme", "audit")
        self.assertEqual(incident["phase"], "recovery")
        wait_for(lambda: len(self.hooks.requests()) == 2, message="the recovery message")

    def test_client_from_a_label_and_errors(self):
        h = self.h
        labelled = copy.deepcopy(PAYLOAD)
        labelled["alerts"][0]["labels"]["client"] = "acme"
        r = self.post(labelled, query="")
        self.assertEqual(r.status, 202, r.body)
        # No client at all: 422 naming the alert, nothing stored.
        r = self.post(PAYLOAD, query="")
        self.assertEqual(r.status, 422, r.body)
        self.assertEqual(r.body["error"]["field"], "alerts[0].labels.client")
        # An unknown client is refused like POST /v1/events refuses it.
        r = self.post(PAYLOAD, query="?client=globex")
        self.assertEqual(r.status, 422, r.body)
        self.assertEqual(r.body["error"]["code"], "unknown_client")
        # Not an Alertmanager payload.
        r = self.post({"hello": "world"})
        self.assertEqual(r.status, 422, r.body)
        # The ingest scope is needed, as for events.
        self.assertEqual(self.post(PAYLOAD, token="audit").status, 403)
        self.assertEqual(self.post(PAYLOAD, token=None).status, 401)
        self.assertEqual(h.request("GET", "/healthz").status, 200)


if __name__ == "__main__":
    unittest.main()
