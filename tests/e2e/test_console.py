"""The web console's serving: /ui/ from the files embedded at build time, with its security
headers, without a token; GET /v1/whoami for the console's sign-in."""

import os
import re
import unittest
import urllib.request

from harness import SLOW, SOURCE_DIR, TOKEN_SCOPES, HeraldTestCase

WEB_DIR = os.path.join(SOURCE_DIR, "web")
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_RAW = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())


def fetch(url, method="GET", headers=None):
    """(status, headers, bytes) without following redirects."""
    req = urllib.request.Request(url, method=method, headers=headers or {},
                                 data=b"" if method == "POST" else None)
    try:
        with _RAW.open(req, timeout=30 * SLOW) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


class ConsoleServingTest(HeraldTestCase):

    def setUp(self):
        self.h = self.start_stack()
        self.base = f"http://127.0.0.1:{self.h.port}"

    def assert_security_headers(self, headers, where):
        csp = headers.get("Content-Security-Policy") or ""
        self.assertIn("default-src 'none'", csp, where)
        self.assertIn("script-src 'self'", csp, where)
        self.assertNotIn("unsafe-inline", csp, where)
        self.assertNotIn("unsafe-eval", csp, where)
        self.assertIn("frame-ancestors 'none'", csp, where)
        self.assertEqual(headers.get("X-Content-Type-Options"), "nosniff", where)
        self.assertEqual(headers.get("Referrer-Policy"), "no-referrer", where)
        self.assertTrue(headers.get("Cache-Control"), where)

    def test_every_file_of_web_is_served_as_is_without_a_token(self):
        names = sorted(n for n in os.listdir(WEB_DIR)
                       if n.endswith((".html", ".js", ".css", ".svg")))
        self.assertIn("index.html", names)
        types = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
        for name in names:
            status, headers, body = fetch(f"{self.base}/ui/{name}")
            self.assertEqual(status, 200, name)
            with open(os.path.join(WEB_DIR, name), "rb") as f:
                self.assertEqual(body, f.read(), f"{name}: the embedded copy differs from web/")
            self.assertEqual(headers.get("Content-Type"), types[os.path.splitext(name)[1]], name)
            self.assertEqual(headers.get("Cache-Control"), "no-cache", name)
            self.assert_security_headers(headers, name)
            # Revalidation: the same ETag answers 304 without a body.
            etag = headers.get("ETag")
            self.assertTrue(etag, name)
            status, _, body = fetch(f"{self.base}/ui/{name}", headers={"If-None-Match": etag})
            self.assertEqual((status, body), (304, b""), name)

    def test_index_and_redirect(self):
        status, headers, body = fetch(f"{self.base}/ui")
        self.assertEqual(status, 308)
        self.assertEqual(headers.get("Location"), "ui/")  # relative: /ui → /ui/
        status, headers, body = fetch(f"{self.base}/ui/")
        self.assertEqual(status, 200)
        self.assertEqual(headers.get("Content-Type"), "text/html; charset=utf-8")
        self.assert_security_headers(headers, "/ui/")
        html = body.decode()
        self.assertIn('<script type="module" src="app.js"></script>', html)
        # No inline script anywhere: every <script> names a file.
        for tag in re.findall(r"<script[^>]*>", html):
            self.assertIn("src=", tag)
        status, _, _ = fetch(f"{self.base}/ui/", method="HEAD")
        self.assertEqual(status, 200)

    def test_every_module_import_resolves(self):
        # A module imported but not embedded would break the console only in a browser.
        seen, todo = set(), ["app.js"]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            status, _, body = fetch(f"{self.base}/ui/{name}")
            self.assertEqual(status, 200, f"{name} (imported) is not served")
            todo += re.findall(r"from\s+'\./([^']+)'", body.decode())
        self.assertGreaterEqual(len(seen), 5)

    def test_unknown_paths_and_methods(self):
        for path in ("/ui/nope.js", "/ui/app.js/x", "/ui/../v1/clients", "/ui/%2e%2e/herald.db",
                     "/ui/.git", "/ui/index.html/"):
            status, headers, _ = fetch(f"{self.base}{path}")
            self.assertEqual(status, 404, path)
            self.assertEqual(headers.get("X-Content-Type-Options"), "nosniff", path)
        status, headers, _ = fetch(f"{self.base}/ui/index.html", method="POST")
        self.assertEqual(status, 405)
        self.assertEqual(headers.get("Allow"), "GET, HEAD")

    def test_whoami(self):
        for name, scopes in TOKEN_SCOPES.items():
            r = self.h.request("GET", "/v1/whoami", name)
            self.assertEqual(r.status, 200, name)
            self.assertEqual(r.body, {"name": name, "scopes": scopes})
        self.assertEqual(self.h.request("GET", "/v1/whoami").status, 401)
        self.assertEqual(self.h.request("GET", "/v1/whoami", "lit:nope").status, 401)


if __name__ == "__main__":
    unittest.main()
