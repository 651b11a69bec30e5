"""An example extension, written the way the official Kiket SDKs behave and independent of Kiket's own code.

It routes on `/v/{version}/webhooks/{event}`, checks `X-Kiket-Signature` (HMAC-SHA256 of
`"<X-Kiket-Timestamp>.<body>"`) and the runtime token of the payload against `api.base_url` +
`/.well-known/jwks.json` (ES256, issuer `kiket.dev`) with PyJWT, calls `GET /api/v1/ext/rate_limit` and
`POST /api/v1/extensions/logs` with `X-Kiket-Runtime-Token`, then answers with the directives it is given.
Only the standard library, PyJWT and requests are used.

Run alone (as a module: tests/support/html.py would shadow the standard library): `python -m tests.support.example_extension --port 8088 --secret whsec_… [--reply reply.json]`.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import requests

ROUTE = re.compile(r"^/v/(?P<version>v[0-9]+)/webhooks/(?P<event>[a-z_.]+)$")
TOLERANCE_S = 300
MANIFEST = """\
extension:
  id: com.example.triage
  name: Triage helper
  version: 1.0.0
  delivery:
    callback:
      url: {url}
      secret: env.KIKET_WEBHOOK_SECRET
  scopes:
    read: [issue, comment]
    write: [comment, issue, workflow]
  events:
    - issue.created
    - {{name: issue.transitioned, version: v2}}
  configuration:
    properties:
      VENDOR_TOKEN: {{type: string, secret: true, description: Token of the vendor API}}
      CHANNEL: {{type: string, default: "#triage"}}
"""


class ExampleExtension:
    """A threaded HTTP server; `received` lists every verified delivery, `refused` every refused one."""

    def __init__(self, secret: str, *, issuer: str = "kiket.dev", port: int = 0):
        self.secret = secret
        self.issuer = issuer
        self.replies: dict[str, Any] = {}
        self.statuses: list[int] = []
        self.received: list[dict[str, Any]] = []
        self.refused: list[dict[str, Any]] = []
        self._jwks: dict[str, jwt.PyJWKClient] = {}
        extension = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = extension.handle(self.path, dict(self.headers), body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> ExampleExtension:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def manifest(self) -> str:
        return MANIFEST.format(url=self.url)

    def _refuse(self, why: str, **details: Any) -> tuple[int, dict]:
        self.refused.append({"why": why, **details})
        return 401, {"error": why}

    def verify_token(self, token: str, base_url: str) -> dict[str, Any]:
        """Verify a runtime token as the SDKs do: the key named by `kid` in the JWKS, ES256, the issuer."""
        client = self._jwks.get(base_url)
        if client is None:
            client = self._jwks[base_url] = jwt.PyJWKClient(f"{base_url}/.well-known/jwks.json", cache_keys=False)
        key = client.get_signing_key_from_jwt(token)
        return jwt.decode(token, key.key, algorithms=["ES256"], issuer=self.issuer,
                          options={"require": ["exp", "iat", "iss", "sub"]})

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict]:
        route = ROUTE.match(path)
        if route is None:
            return 404, {"error": "no such route"}
        timestamp = headers.get("X-Kiket-Timestamp", "")
        signature = headers.get("X-Kiket-Signature", "")
        expected = "sha256=" + hmac.new(self.secret.encode(), timestamp.encode() + b"." + body,
                                        hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature, expected):
            return self._refuse("bad signature")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TOLERANCE_S:
            return self._refuse("stale timestamp")
        payload = json.loads(body)
        version = headers.get("X-Kiket-Event-Version") or route["version"]
        token = (payload.get("authentication") or {}).get("runtime_token", "")
        base_url = (payload.get("api") or {}).get("base_url", "")
        try:
            claims = self.verify_token(token, base_url)
        except jwt.PyJWTError as error:
            return self._refuse(f"runtime token refused: {error}", event=route["event"])
        call = {"X-Kiket-Runtime-Token": token}
        rate = requests.get(f"{base_url}/api/v1/ext/rate_limit", headers=call, timeout=10)
        log = requests.post(f"{base_url}/api/v1/extensions/logs", headers=call, timeout=10,
                            json={"message": f"handled {route['event']}", "metadata": {"event_id": payload["id"]}})
        self.received.append({"event": route["event"], "version": version, "headers": headers, "payload": payload,
                              "claims": claims, "rate_limit": (rate.status_code, rate.json()),
                              "log_status": log.status_code})
        if self.statuses:
            status = self.statuses.pop(0)
            if status >= 300:
                return status, {"error": "scripted failure"}
        return 200, self.replies.get(route["event"], {"status": "allow", "message": "ok"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8088)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--reply", help="JSON file: {event: reply body}")
    args = parser.parse_args()
    extension = ExampleExtension(args.secret, port=args.port)
    if args.reply:
        with open(args.reply) as handle:
            extension.replies = json.load(handle)
    print(f"listening on {extension.url}; manifest:\n{extension.manifest()}", flush=True)
    extension.server.serve_forever()


if __name__ == "__main__":
    main()
