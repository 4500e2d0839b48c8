"""HTTP front of the simulator: the routing table of the four APIs, their shared plumbing (faults, rate
limits, ETags, framing) and make_server. The APIs are in github, vercel, railway and supabase; the control
API in control; faults and rate limits in faults; the demo Prometheus files in promfiles."""

from __future__ import annotations

import atexit
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from obs_bridges import log
from obs_bridges.httpserver import QuietHandler, make_http_server
from obs_bridges.simulator import costs, github, railway, supabase, vercel
from obs_bridges.simulator.args import add_world_args, world_from_args
from obs_bridges.simulator.common import ApiRequest, Reply, auth_kind
from obs_bridges.simulator.control import control
from obs_bridges.simulator.drains import DrainSender
from obs_bridges.simulator.faults import SimState
from obs_bridges.simulator.promfiles import remove_files, write_prometheus_files
from obs_bridges.simulator.webhooks import WebhookSender
from obs_bridges.simulator.world import World

# The CLI (obs_bridges.cli) starts the simulator from here: its arguments, its world and its server.
__all__ = ["add_world_args", "make_server", "world_from_args"]

LOG = log.get("obs_bridges.simulator")
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Route:
    prefix: str
    platform: str  # whose faults, rate-limit window and request log entries these requests are
    handle: Callable[[SimState, ApiRequest], tuple]
    raw: bool = False  # the handler answers (status, bytes, headers) itself: no JSON, ETag or rate limit
    etag: bool = False  # weak ETags on GET 200; If-None-Match answered 304, not counted against the limit
    limited: tuple[int, bytes] = (429, b'{"message":"Too Many Requests"}')  # the answer once the limit is used up


ROUTES = (
    Route("/railway/graphql/v2", "railway", railway.handle,
          limited=(429, b'{"errors":[{"message":"Too many requests"}]}')),
    Route("/vercel", "vercel", vercel.handle),
    Route("/supabase-metrics", "supabase", supabase.handle_metrics, raw=True),
    Route("/supabase", "supabase", supabase.handle),
    Route("/github", "github", github.handle, etag=True,
          limited=(403, json.dumps({"message": "API rate limit exceeded for user.",
                                    "documentation_url": github.DOCS}).encode())),
    Route("/vercel/v1/billing", "vercel", costs.vercel_charges, raw=True),  # JSON lines, not JSON
)

MAX_BODY = 10_000_000
READ_TIMEOUT = 30.0  # seconds a client may stay silent mid-request; then the connection is closed
MAX_CONNECTIONS = 128


def route_for(path: str) -> tuple[Route | None, str]:
    """The route of a request path and the path below its prefix ("/" for the prefix itself); the longest
    prefix wins (/vercel/v1/billing before /vercel)."""
    for r in sorted(ROUTES, key=lambda r: -len(r.prefix)):
        if path == r.prefix or path.startswith(r.prefix + "/"):
            return r, path[len(r.prefix):] or "/"
    return None, path


def respond(state: SimState, route: Route, req: ApiRequest, fault: dict | None, entry: dict):
    """The answer to one API request, as (status, body bytes, headers), after the fault taken for it (None,
    or one that is neither an outage nor slow: the HTTP handler has dealt with those). Fills entry["status"]
    and entry["counted"] for the request log. No I/O: unit tests call it directly."""
    if fault is not None:
        k = fault["kind"]
        if k == "http5xx":
            entry["status"] = fault["status"]
            return fault["status"], b'{"message":"Server Error"}', dict(JSON)
        if k == "ratelimit429":
            entry["status"] = 429
            return 429, b'{"message":"Too Many Requests"}', {**JSON, "Retry-After": str(fault["retry_after"])}
        if k == "unauthorized":
            entry["status"] = 401
            return 401, b'{"message":"Unauthorized"}', dict(JSON)
    if route.raw:
        st, out, h = route.handle(state, req)
        entry["status"] = st
        return st, out, h
    conditional = req.headers.get("If-None-Match")
    try:
        st, obj, h = route.handle(state, req)
    except Reply as r:
        st, obj, h = r.status, r.body, dict(r.headers)
    out = json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()
    h = {"Content-Type": "application/json; charset=utf-8", **h}
    not_modified = False
    if route.etag and st == 200 and req.method == "GET":
        etag = 'W/"' + hashlib.sha1(out).hexdigest() + '"'
        h["ETag"] = etag
        h["Cache-Control"] = "private, max-age=60, s-maxage=60"
        not_modified = conditional is not None and conditional.strip() == etag
        if fault is not None and fault["kind"] in ("malformed", "truncated", "wrong_shape"):
            not_modified = False  # a broken upstream answers 200 with a broken body
    counted = not not_modified and st not in (401,)
    allowed, rl = state.rate(route.platform, counted)
    h.update(rl)
    if not allowed:
        entry["status"] = route.limited[0]
        return route.limited[0], route.limited[1], h
    entry["counted"] = counted
    if not_modified:
        entry["status"] = 304
        return 304, b"", {k: v for k, v in h.items() if k != "Content-Type"}
    if fault is not None and st == 200:
        k = fault["kind"]
        if k == "malformed":
            out = b'{"this is": not json' + out[:20]
        elif k == "wrong_shape":
            out = b'{"unexpected": [1, "two", null], "data": "nope"}'
            h.pop("ETag", None)
        elif k == "truncated":
            h["_truncate"] = True
            h.pop("ETag", None)
            entry["status"] = st
            return st, out, h
        h.pop("ETag", None)
    entry["status"] = st
    return st, out, h


def make_server(addr: str, port: int, world: World) -> ThreadingHTTPServer:
    state = SimState(world)

    class Handler(QuietHandler):
        server_version = "obs-bridges-simulator"
        timeout = READ_TIMEOUT

        def _write(self, status: int, body: bytes, headers: dict, truncate: bool = False):
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            if truncate:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and status != 304:
                self.wfile.write(body[: len(body) // 2] if truncate else body)
            if truncate:
                self.close_connection = True

        def _read_body(self) -> bytes | None:
            """The request body, read whole; None when the request was refused or the client went away.
            Framing first: a body that is not read whole would be parsed as further requests on this
            connection (found by the attack script: a POST hidden in an oversized body ran)."""
            raw_len = (self.headers.get("Content-Length") or "0").strip()
            if self.headers.get("Transfer-Encoding"):
                self.close_connection = True
                self._write(411, b'{"message":"send a Content-Length; Transfer-Encoding is not accepted"}',
                            {**JSON, "Connection": "close"})
                return None
            if not (raw_len.isascii() and raw_len.isdigit()) or int(raw_len) > MAX_BODY:
                self.close_connection = True
                self._write(413 if raw_len.isascii() and raw_len.isdigit() else 400,
                            json.dumps({"message": f"Content-Length must be a whole number up to {MAX_BODY}"}).encode(),
                            {**JSON, "Connection": "close"})
                return None
            length = int(raw_len)
            body = self.rfile.read(length) if length else b""
            if len(body) < length:  # the client stopped sending (or the read timed out)
                self.close_connection = True
                return None
            return body

        def handle_any(self, method: str):
            u = urlsplit(self.path)
            path, q = u.path, parse_qs(u.query, keep_blank_values=True)
            body = self._read_body()
            if body is None:
                return
            host = f"http://{self.headers.get('Host', 'localhost')}"
            if path in ("/healthz", "/"):
                self._write(200, json.dumps({"ok": True, "role": "simulator"}).encode(), dict(JSON))
                return
            if path.startswith("/_control"):
                try:
                    st, obj, h = control(state, method, path, q, body)
                except Reply as r:
                    st, obj, h = r.status, r.body, r.headers
                except (KeyError, ValueError, TypeError) as e:
                    st, obj, h = 400, {"message": f"bad control request: {str(e)[:200]}"}, {}
                except RecursionError:  # json.loads of deeply nested input
                    st, obj, h = 400, {"message": "bad control request: JSON nested too deeply"}, {}
                self._write(st, json.dumps(obj).encode(), {**JSON, **h})
                return
            route, sub = route_for(path)
            if route is None:
                self._write(404, b'{"message":"unknown API"}', dict(JSON))
                return
            entry = {"t": state.clock(), "platform": route.platform, "method": method, "path": path,
                     "query": u.query, "status": 0, "conditional": bool(self.headers.get("If-None-Match")),
                     "counted": False, "auth": auth_kind(self.headers)}
            req = ApiRequest(method, sub, q, self.headers, host + route.prefix, body)
            try:
                status, out, headers = self._dispatch(route, req, entry)
            finally:
                with state.lock:
                    state.requests.append(entry)
            if status is None:
                return
            self._write(status, out, headers, truncate=headers.pop("_truncate", False))

        def _dispatch(self, route: Route, req: ApiRequest, entry: dict):
            fault = state.take_fault(route.platform, self.path)
            if fault is not None:
                entry["fault"] = fault["kind"]
                if fault["kind"] == "outage":
                    entry["status"] = -1
                    self.close_connection = True
                    try:
                        self.connection.shutdown(2)
                    except OSError:
                        pass
                    return None, b"", {}
                if fault["kind"] == "slow":
                    time.sleep(min(fault["delay"], 30))
            return respond(state, route, req, fault, entry)

        def do_GET(self):
            self.handle_any("GET")

        def do_POST(self):
            self.handle_any("POST")

        def do_DELETE(self):
            self.handle_any("DELETE")

        def do_HEAD(self):
            self.handle_any("HEAD")

    srv = make_http_server(addr, port, Handler, max_connections=MAX_CONNECTIONS)
    srv.sim_state = state
    if world.prometheus_dir:
        written = write_prometheus_files(world, world.prometheus_dir)
        atexit.register(remove_files, written)
    if world.github_webhook is not None:
        state.webhooks = WebhookSender(world, world.github_webhook)
        state.webhooks.write_secret()  # an OSError stops the start: the CLI reports it
        state.webhooks.start()
        LOG.info("delivering GitHub webhooks", extra=log.kv(url=world.github_webhook.url,
                                                            secret_file=world.github_webhook.secret_file))
    if world.drains is not None:
        state.drains = DrainSender(world, world.drains)
        state.drains.write_secrets()  # an OSError stops the start: the CLI reports it
        state.drains.start()
        LOG.info("pushing platform drains", extra=log.kv(url=world.drains.url, kinds=",".join(world.drains.kinds),
                                                         secret_dir=world.drains.secret_dir))

    def ticker():
        while True:
            time.sleep(1.0)
            try:
                world.tick()
            except Exception:  # pragma: no cover
                LOG.exception("world tick failed")

    threading.Thread(target=ticker, daemon=True, name="world-tick").start()
    return srv
