"""A webhook receiver that verifies every delivery with the `standardwebhooks` package.

Usage: webhook_receiver.py SECRET FAIL_FIRST. Prints `PORT <n>` once listening, then one line
per request: `OK <event type>` when the signature verifies, `BAD <error>` otherwise. The first
FAIL_FIRST valid deliveries are answered 500 so the sender must retry.
"""
import http.server
import json
import sys

from standardwebhooks import Webhook

secret, fail_first = sys.argv[1], int(sys.argv[2])
hook = Webhook(secret)
seen = 0


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global seen
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        try:
            payload = hook.verify(body, dict(self.headers.items()))
        except Exception as e:  # noqa: BLE001 - report any verification failure
            print(f"BAD {e}", flush=True)
            self.send_response(400)
            self.end_headers()
            return
        seen += 1
        status = 500 if seen <= fail_first else 204
        print(f"OK {payload['type']} {status}", flush=True)
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
print(f"PORT {server.server_address[1]}", flush=True)
server.serve_forever()
