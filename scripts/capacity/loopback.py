"""serve(): an HTTP server on 127.0.0.1 (a free port) for the stand-ins the measured binaries talk to (scrape
targets, a log sink). Every request gets 200 and what `answer(path, headers, body)` returns."""
from __future__ import annotations

import threading
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

Answer = Callable[[str, Message, bytes], tuple[bytes, str]]   # (path, headers, body) -> (body, Content-Type)


def serve(method: str, answer: Answer, protocol: str = "HTTP/1.0") -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = protocol

        def handle_one(self):
            n = int(self.headers.get("Content-Length") or 0)
            reply, content_type = answer(self.path, self.headers, self.rfile.read(n) if n else b"")
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *a):
            pass

    setattr(Handler, f"do_{method}", Handler.handle_one)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def close(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()
