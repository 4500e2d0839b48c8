#!/usr/bin/env python3
"""A local Alertmanager webhook receiver for the demo: see notifications without Slack or PagerDuty.

POST <any path>        an Alertmanager webhook payload (version 4). Each notification is logged to
                       stdout as one JSON line and kept in memory (the last SINK_KEEP, default 500).
GET  /notifications    the kept notifications, oldest first, as a JSON list (?receiver=ops filters,
                       ?limit=N keeps the last N).
GET  /healthz          "ok".

Environment: SINK_HOST (default 0.0.0.0), SINK_PORT (default 9097), SINK_KEEP (default 500).
Standard library only, no state on disk.
"""
from __future__ import annotations

import collections
import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

MAX_BODY = 4 * 1024 * 1024


class Store:
    def __init__(self, keep: int):
        self._items: collections.deque = collections.deque(maxlen=keep)
        self._lock = threading.Lock()
        self._seq = 0

    def add(self, record: dict) -> dict:
        with self._lock:
            self._seq += 1
            record = {"seq": self._seq, **record}
            self._items.append(record)
        return record

    def list(self, receiver: str | None = None, limit: int | None = None) -> list[dict]:
        with self._lock:
            items = [r for r in self._items if receiver is None or r.get("receiver") == receiver]
        return items[-limit:] if limit else items


def summarise(path: str, payload: dict) -> dict:
    """The notification as one record: what a user needs to see that the right alert arrived."""
    alerts = []
    for a in payload.get("alerts") or []:
        if not isinstance(a, dict):
            continue
        ann = a.get("annotations") or {}
        alerts.append({
            "status": a.get("status"),
            "labels": a.get("labels") or {},
            "summary": ann.get("summary"),
            "description": ann.get("description"),
            "runbook_url": ann.get("runbook_url"),
            "dashboard_url": ann.get("dashboard_url"),
            "startsAt": a.get("startsAt"),
            "endsAt": a.get("endsAt"),
            "fingerprint": a.get("fingerprint"),
        })
    return {
        "received_at": time.time(),
        "path": path,
        "receiver": payload.get("receiver"),
        "status": payload.get("status"),
        "groupLabels": payload.get("groupLabels") or {},
        "commonLabels": payload.get("commonLabels") or {},
        "groupKey": payload.get("groupKey"),
        "truncatedAlerts": payload.get("truncatedAlerts", 0),
        "alerts": alerts,
    }


def make_handler(store: Store):
    class Handler(BaseHTTPRequestHandler):
        server_version = "obs-webhook-sink/1"

        def log_message(self, fmt, *args):  # access logs off: stdout carries one line per notification
            pass

        def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            url = urlparse(self.path)
            if url.path == "/healthz":
                return self._send(200, b"ok\n", "text/plain")
            if url.path == "/notifications":
                q = parse_qs(url.query)
                try:
                    limit = int(q["limit"][0]) if "limit" in q else None
                except ValueError:
                    return self._send(400, b'{"error":"limit must be an integer"}')
                receiver = q["receiver"][0] if "receiver" in q else None
                return self._send(200, json.dumps(store.list(receiver, limit)).encode())
            return self._send(404, b'{"error":"not found"}')

        def do_POST(self):
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY:
                return self._send(413, b'{"error":"body too large or bad length"}')
            raw = self.rfile.read(length)
            try:
                payload = json.loads(raw)
                if not isinstance(payload, dict):
                    raise ValueError("not an object")
            except ValueError as e:
                return self._send(400, json.dumps({"error": f"bad JSON: {e}"}).encode())
            record = store.add(summarise(urlparse(self.path).path, payload))
            sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
            sys.stdout.flush()
            return self._send(200, b'{"status":"ok"}')

    return Handler


def serve(host: str, port: int, keep: int) -> ThreadingHTTPServer:
    v6 = ":" in host  # "::" on Railway's private network: dual stack, IPv4 accepted too

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        address_family = socket.AF_INET6 if v6 else socket.AF_INET

        def server_bind(self):
            if v6:
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            super().server_bind()

    return Server((host, port), make_handler(Store(keep)))


def main() -> None:
    host = os.environ.get("SINK_HOST", "0.0.0.0")
    port = int(os.environ.get("SINK_PORT", "9097"))
    keep = int(os.environ.get("SINK_KEEP", "500"))
    srv = serve(host, port, keep)
    sys.stderr.write(json.dumps({"msg": "webhook sink listening", "host": host, "port": port}) + "\n")
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()
