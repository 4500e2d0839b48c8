"""A real HTTP server on 127.0.0.1 that records every request (path, headers, body) and answers with a status
the test sets: the upstream behind a proxy or forwarder under test (the collector, a receiver)."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Captured:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


class CaptureServer:
    def __init__(self, status: int = 200, reply: bytes = b"{}"):
        self.status, self.reply = status, reply
        self.requests: list[Captured] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with outer.lock:
                    outer.requests.append(Captured(self.command, self.path,
                                                   {k.lower(): v for k, v in self.headers.items()}, body))
                    status, reply = outer.status, outer.reply
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def taken(self) -> list[Captured]:
        with self.lock:
            return list(self.requests)

    def __enter__(self) -> "CaptureServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
