#!/usr/bin/env python3
"""A webhook receiver for tests, verifying with the Standard Webhooks library itself.

    receiver.py serve     listen on 127.0.0.1 (a port the OS picks); print
                          {"event": "listening", "port": N}, then one line per POST:
                          {"event": "delivery", "headers": {...}, "body": "..."};
                          answer 204. Exits when stdin closes.
    receiver.py verify    read delivery lines on stdin, verify each with
                          standardwebhooks.Webhook(secret) (the secret, whsec_...,
                          in WEBHOOK_SECRET), print the JSON list of the payloads it
                          returns; exit 1 naming the first delivery that fails.
"""

import http.server
import json
import os
import sys
import threading

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode("utf-8")
        headers = {k.lower(): v for k, v in self.headers.items()}
        print(json.dumps({"event": "delivery", "headers": headers, "body": body}), flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def serve():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(json.dumps({"event": "listening", "port": server.server_address[1]}), flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()


def verify():
    hook = Webhook(os.environ["WEBHOOK_SECRET"])
    payloads = []
    for n, line in enumerate(sys.stdin):
        delivery = json.loads(line)
        try:
            payloads.append(hook.verify(delivery["body"], delivery["headers"]))
        except WebhookVerificationError as e:
            print(f"delivery {n + 1} does not verify: {e}", file=sys.stderr)
            sys.exit(1)
    print(json.dumps(payloads))


if __name__ == "__main__":
    {"serve": serve, "verify": verify}[sys.argv[1]]()
