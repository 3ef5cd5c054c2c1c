"""Bearer tokens and scopes, table-driven over one endpoint of each kind."""

import unittest

from harness import HeraldTestCase, event

# (name, method, path, body, tokens allowed). Every other token gets 403.
ROUTES = [
    ("ingest", "POST", "/v1/events", event("evt-auth-{n}"), {"ingest", "all"}),
    ("admin", "PUT", "/v1/clients/acme/contacts/c{n}",
     {"name": "Casey", "roles": ["it"], "email": "casey@acme.example", "channels": ["email"]},
     {"admin", "all"}),
    ("admin-read", "GET", "/v1/clients/acme/plan", None, {"admin", "audit", "all"}),
    ("admin-read-preview", "POST", "/v1/clients/acme/plan/preview",
     {"phase": "containment", "severity": "high"}, {"admin", "audit", "all"}),
    ("audit", "GET", "/v1/deliveries?client=acme", None, {"audit", "all"}),
    ("audit-verify", "GET", "/v1/audit/verify", None, {"audit", "all"}),
    ("admin-retry", "POST", "/v1/deliveries/nope/retry", None, {"admin", "all"}),
]
TOKEN_NAMES = ["admin", "audit", "ingest", "all"]


class AuthTest(HeraldTestCase):

    def setUp(self):
        self.h = self.start_stack()
        self.setup_acme(self.h, people=False, slack=True, webhook=False)

    def assert_refused(self, r, status, code):
        self.assertEqual(r.status, status, r.body)
        self.assertEqual(r.body["error"]["code"], code, r.body)

    def test_scopes(self):
        n = 0
        for name, method, path, body, allowed in ROUTES:
            def call(token, headers=None):
                nonlocal n
                n += 1
                p = path.format(n=n)
                b = body
                if isinstance(body, dict) and body.get("event_id"):
                    b = dict(body, event_id=body["event_id"].format(n=n))
                return self.h.request(method, p, token, b, headers=headers)

            with self.subTest(route=name, token=None):
                r = call(None)
                self.assert_refused(r, 401, "unauthorized")
                self.assertIn("Bearer", r.headers.get("WWW-Authenticate", ""))
            with self.subTest(route=name, token="wrong"):
                self.assert_refused(call("lit:tok-not-a-real-token"), 401, "unauthorized")
            with self.subTest(route=name, token="basic"):
                r = call(None, headers={"Authorization": "Basic YWRtaW46YWRtaW4="})
                self.assert_refused(r, 401, "unauthorized")
            for token in TOKEN_NAMES:
                with self.subTest(route=name, token=token):
                    r = call(token)
                    if token in allowed:
                        # The retry route's id does not exist: 404 proves the token passed.
                        expected = (404,) if name == "admin-retry" else (200, 201, 202)
                        self.assertIn(r.status, expected, r.body)
                    else:
                        self.assert_refused(r, 403, "forbidden")

    def test_operations_need_no_token(self):
        for path in ("/healthz", "/readyz", "/metrics"):
            with self.subTest(path=path):
                self.assertEqual(self.h.request("GET", path).status, 200)
        metrics = self.h.request("GET", "/metrics").body
        # The refusals above are counted.
        self.h.request("GET", "/v1/audit/verify")
        self.h.request("GET", "/v1/audit/verify", "ingest")
        metrics = self.h.request("GET", "/metrics").body
        self.assertRegex(metrics, r'herald_http_auth_failures_total\{code="401"\} [1-9]')
        self.assertRegex(metrics, r'herald_http_auth_failures_total\{code="403"\} [1-9]')

    def test_unknown_routes_and_methods(self):
        r = self.h.request("GET", "/v1/nowhere", "all")
        self.assertEqual(r.status, 404, r.body)
        self.assertEqual(r.body["error"]["code"], "not_found")
        r = self.h.request("DELETE", "/v1/events", "all")
        self.assertEqual(r.status, 405, r.body)
        self.assertIn("POST", r.headers.get("Allow", ""))

    def test_refused_writes_change_nothing(self):
        h = self.h
        before = h.ok("GET", "/v1/clients/acme", "audit")
        r = h.request("PUT", "/v1/clients/acme", "audit", {"name": "Hijacked"})
        self.assert_refused(r, 403, "forbidden")
        r = h.request("PUT", "/v1/clients/acme", "lit:guess", {"name": "Hijacked"})
        self.assert_refused(r, 401, "unauthorized")
        self.assertEqual(h.ok("GET", "/v1/clients/acme", "audit"), before)
        r = h.request("POST", "/v1/events", "admin", event("evt-forbidden"))
        self.assert_refused(r, 403, "forbidden")
        self.assertEqual(h.deliveries(), [])


if __name__ == "__main__":
    unittest.main()
