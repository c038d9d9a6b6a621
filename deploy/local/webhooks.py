#!/usr/bin/env python3
"""The local stack's alert receiver: the pager, chat, ticket and dead man's switch webhooks of
alerts/alertmanager/alertmanager.yml, on loopback. It takes every notification Alertmanager
posts, logs one line per alert and lists the newest at GET /; a local stack has no pager, and
without an endpoint Alertmanager's failed sends would keep AlertmanagerNotificationsFailing firing.

    webhooks.py --port PORT

Standard library only.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import http.server
import json
import sys
import threading
from typing import Any

RECEIVERS = ("pager", "chat", "ticket", "deadmansswitch")
MAX_BODY_BYTES = 1 << 20  # Alertmanager's batches are a few KiB; refuse anything far larger
KEPT = 200  # notifications listed at GET /


class Notifications:
    def __init__(self) -> None:
        self._kept: collections.deque[dict[str, Any]] = collections.deque(maxlen=KEPT)
        self._lock = threading.Lock()

    def add(self, receiver: str, body: dict[str, Any]) -> list[str]:
        received = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        alerts = body.get("alerts") if isinstance(body.get("alerts"), list) else []
        lines = [
            f"{received} {receiver} {alert.get('status', '?')} "
            f"{(alert.get('labels') or {}).get('alertname', '?')}"
            for alert in alerts
            if isinstance(alert, dict)
        ]
        with self._lock:
            self._kept.appendleft({"receiver": receiver, "received": received, **body})
        return lines

    def newest(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._kept)


def handler(notifications: Notifications) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/-/ready":
                self._reply(200, {"status": "ready"})
            elif self.path == "/":
                self._reply(200, notifications.newest())
            else:
                self._reply(404, {"error": f"no page {self.path}; try / or /-/ready"})

        def do_POST(self) -> None:
            receiver = self.path.strip("/")
            if receiver not in RECEIVERS:
                self._reply(404, {"error": f"no receiver {receiver!r}; known: {RECEIVERS}"})
                return
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self._reply(411, {"error": "a notification needs a Content-Length"})
                return
            if not 0 <= length <= MAX_BODY_BYTES:
                self._reply(413, {"error": f"notifications are at most {MAX_BODY_BYTES} bytes"})
                return
            try:
                body = json.loads(self.rfile.read(length))
            except ValueError as error:
                self._reply(400, {"error": f"a notification is Alertmanager's JSON: {error}"})
                return
            if not isinstance(body, dict):
                self._reply(400, {"error": "a notification is a JSON object"})
                return
            for line in notifications.add(receiver, body):
                print(line, flush=True)
            self._reply(200, {"status": "received"})

        def _reply(self, status: int, payload: Any) -> None:
            data = json.dumps(payload, indent=1).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass  # one line per alert is logged instead

    return Handler


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    server = http.server.ThreadingHTTPServer((args.host, args.port), handler(Notifications()))
    print(f"alert webhooks on http://{args.host}:{args.port}/<receiver>", flush=True)
    server.serve_forever()  # until SIGTERM from stack.py
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
