#!/usr/bin/env python3
"""A local Alertmanager webhook receiver for the demo: see notifications without Slack or PagerDuty.

POST <any path>        an Alertmanager webhook payload (version 4). Each notification is logged to
                       stdout as one JSON line and kept in memory (the last SINK_KEEP, default 500).
GET  /notifications    the kept notifications, oldest first, as a JSON list (?receiver=ops filters,
                       ?limit=N keeps the last N).
GET  /healthz          "ok".

Environment: SINK_HOST (default 0.0.0.0), SINK_PORT (default 9097), SINK_KEEP (default 500),
SINK_KEEP_BYTES (default 8 MiB: the oldest notifications go first past it), SINK_READ_TIMEOUT (seconds a
client may take per socket read, default 10), SINK_MAX_CONNECTIONS (default 64; more are closed at once).
A notification keeps at most MAX_ALERTS alerts (the rest are counted in alerts_dropped) and each text
field at most MAX_FIELD characters, so a hostile body cannot grow memory or /notifications.
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
MAX_ALERTS = 100      # Alertmanager's own max_alerts is per receiver; a real group rarely has more
MAX_FIELD = 2048      # characters kept of any one label, annotation or other text
MAX_LABELS = 64       # labels (or annotations) kept per alert


def log(level: str, msg: str, **fields) -> None:
    """The sink's own log lines (not the notifications, which are data on stdout): one JSON line on stderr
    in the stack's log schema (docs/logging.md): ts, level, component, logger, msg, fields."""
    now = time.time()
    rec = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z",
           "level": level, "component": "webhook-sink", "logger": "webhook-sink", "msg": msg}
    rec.update((k, v) for k, v in fields.items() if k not in rec)
    try:
        sys.stderr.write(json.dumps(rec, separators=(",", ":")) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


class BadPayload(ValueError):
    """A webhook body that is JSON but not an Alertmanager payload: answered with 400."""


class Store:
    def __init__(self, keep: int, keep_bytes: int = 8 * 1024 * 1024):
        self._items: collections.deque = collections.deque(maxlen=keep)
        self._sizes: collections.deque = collections.deque(maxlen=keep)
        self._bytes = 0
        self.keep_bytes = keep_bytes
        self._lock = threading.Lock()
        self._seq = 0

    def add(self, record: dict) -> dict:
        with self._lock:
            self._seq += 1
            record = {"seq": self._seq, **record}
            if len(self._items) == self._items.maxlen:
                self._bytes -= self._sizes[0]
            size = len(json.dumps(record))
            self._items.append(record)
            self._sizes.append(size)
            self._bytes += size
            while self._bytes > self.keep_bytes and len(self._items) > 1:
                self._items.popleft()
                self._bytes -= self._sizes.popleft()
        return record

    def list(self, receiver: str | None = None, limit: int | None = None) -> list[dict]:
        with self._lock:
            items = [r for r in self._items if receiver is None or r.get("receiver") == receiver]
        return items[-limit:] if limit else items


def _text(v, where: str):
    if v is None:
        return None
    if not isinstance(v, (str, int, float, bool)):
        raise BadPayload(f"{where} must be a string")
    return str(v)[:MAX_FIELD]


def _strings(v, where: str) -> dict:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise BadPayload(f"{where} must be an object of strings")
    return {str(k)[:MAX_FIELD]: _text(x, f"{where}.{k}") for k, x in list(v.items())[:MAX_LABELS]}


def summarise(path: str, payload: dict) -> dict:
    """The notification as one record: what a user needs to see that the right alert arrived.
    Raises BadPayload when a field has the wrong type; keeps at most MAX_ALERTS alerts."""
    raw = payload.get("alerts")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise BadPayload("alerts must be a list")
    alerts = []
    for i, a in enumerate(raw[:MAX_ALERTS]):
        if not isinstance(a, dict):
            raise BadPayload(f"alerts[{i}] must be an object")
        ann = _strings(a.get("annotations"), f"alerts[{i}].annotations")
        alerts.append({
            "status": _text(a.get("status"), f"alerts[{i}].status"),
            "labels": _strings(a.get("labels"), f"alerts[{i}].labels"),
            "summary": ann.get("summary"),
            "description": ann.get("description"),
            "runbook_url": ann.get("runbook_url"),
            "dashboard_url": ann.get("dashboard_url"),
            "startsAt": _text(a.get("startsAt"), f"alerts[{i}].startsAt"),
            "endsAt": _text(a.get("endsAt"), f"alerts[{i}].endsAt"),
            "fingerprint": _text(a.get("fingerprint"), f"alerts[{i}].fingerprint"),
        })
    truncated = payload.get("truncatedAlerts", 0)
    if not isinstance(truncated, int) or isinstance(truncated, bool):
        raise BadPayload("truncatedAlerts must be a number")
    return {
        "received_at": time.time(),
        "path": path[:MAX_FIELD],
        "receiver": _text(payload.get("receiver"), "receiver"),
        "status": _text(payload.get("status"), "status"),
        "groupLabels": _strings(payload.get("groupLabels"), "groupLabels"),
        "commonLabels": _strings(payload.get("commonLabels"), "commonLabels"),
        "groupKey": _text(payload.get("groupKey"), "groupKey"),
        "truncatedAlerts": truncated,
        "alerts": alerts,
        "alerts_dropped": max(0, len(raw) - MAX_ALERTS),
    }


def make_handler(store: Store, read_timeout: float = 10.0):
    class Handler(BaseHTTPRequestHandler):
        timeout = read_timeout  # per socket operation: a slow client cannot hold a thread for ever
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

        def _read_body(self, length: int) -> bytes | None:
            """The body, or None when it does not arrive within 3 read timeouts in all (a trickle
            resets a per-read timeout, not this deadline)."""
            deadline = time.monotonic() + 3 * read_timeout
            chunks, got = [], 0
            try:
                while got < length:
                    if time.monotonic() > deadline:
                        return None
                    chunk = self.rfile.read1(min(65536, length - got))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    got += len(chunk)
            except OSError:
                return None
            return b"".join(chunks)

        def do_POST(self):
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY:
                return self._send(413, b'{"error":"body too large or bad length"}')
            raw = self._read_body(length)
            if raw is None:  # too slow: dropped, never waited for
                self.close_connection = True
                return None
            if len(raw) < length:
                self.close_connection = True
                return self._send(400, b'{"error":"body shorter than its Content-Length"}')
            try:
                payload = json.loads(raw)
                if not isinstance(payload, dict):
                    raise BadPayload("the body must be a JSON object")
                summary = summarise(urlparse(self.path).path, payload)
            except RecursionError:
                return self._send(400, b'{"error":"bad JSON: nested too deeply"}')
            except ValueError as e:  # BadPayload, or json's own error
                return self._send(400, json.dumps({"error": f"bad payload: {str(e)[:200]}"}).encode())
            record = store.add(summary)
            sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
            sys.stdout.flush()
            return self._send(200, b'{"status":"ok"}')

    return Handler


def serve(host: str, port: int, keep: int, keep_bytes: int = 8 * 1024 * 1024, read_timeout: float = 10.0,
          max_connections: int = 64) -> ThreadingHTTPServer:
    v6 = ":" in host  # "::" on Railway's private network: dual stack, IPv4 accepted too
    slots = threading.BoundedSemaphore(max_connections)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        address_family = socket.AF_INET6 if v6 else socket.AF_INET
        # socketserver listens with a backlog of 5: in a burst, the kernel drops the rest's handshakes and
        # they retry for seconds before the cap below can even close them. Accept them promptly instead.
        request_queue_size = 2 * max_connections

        def process_request(self, request, client_address):
            # One thread per connection, at most max_connections: past that, close at once.
            if not slots.acquire(blocking=False):
                self.shutdown_request(request)
                return
            super().process_request(request, client_address)

        def process_request_thread(self, request, client_address):
            try:
                super().process_request_thread(request, client_address)
            finally:
                slots.release()

        def server_bind(self):
            if v6:
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            super().server_bind()

    return Server((host, port), make_handler(Store(keep, keep_bytes), read_timeout))


def main() -> None:
    host = os.environ.get("SINK_HOST", "0.0.0.0")
    port = int(os.environ.get("SINK_PORT", "9097"))
    keep = int(os.environ.get("SINK_KEEP", "500"))
    srv = serve(host, port, keep, int(os.environ.get("SINK_KEEP_BYTES", str(8 * 1024 * 1024))),
                float(os.environ.get("SINK_READ_TIMEOUT", "10")), int(os.environ.get("SINK_MAX_CONNECTIONS", "64")))
    log("info", "webhook sink listening", host=host, port=srv.server_address[1])
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()
