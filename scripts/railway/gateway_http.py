"""The client's side of HTTP/1.1 for the auth gateway (auth_gateway.py): the request head read and parsed
strictly (RFC 9112), the body's framing, and the request target's path.

The head is parsed here instead of by http.server and http.client.parse_headers: those drop header lines
after a malformed one, unfold obs-folded lines, accept bare CR and NUL, and know no total deadline or size
for the head. Everything malformed or ambiguous is a 400 and the connection is closed: no guess about where
the next request starts.
"""
from __future__ import annotations

import posixpath
import re
import socket
import time
from urllib.parse import unquote

CHUNK = 64 * 1024
MAX_REQUEST_LINE = 8192  # longer: 414 (Grafana and promtool send long queries as POST bodies)
MAX_FIELDS = 100         # header lines per request (Railway's edge forwards at most 100 either)
# Fields that decide framing, routing or identity: a second copy is ambiguous (which one does the upstream
# or the limiter believe?), so it is a 400.
SINGLE = ("host", "content-length", "transfer-encoding", "authorization", "expect")

TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
REQUEST_LINE = re.compile(rb"(" + TOKEN + rb") ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])")
FIELD_NAME = re.compile(TOKEN)
BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # CTLs but HTAB: NUL, bare CR, bare LF, ...
CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;[\x09\x20-\x7e\x80-\xff]*)?")  # no 0x, +, -, _, spaces
CONTENT_LENGTH = re.compile(r"[0-9]{1,18}", re.ASCII)  # str.isdigit() would take "²" and "５"


class HttpError(Exception):
    """A request refused as it is: the status and a fixed reason (for the reply and the log; never a piece
    of the request)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


BodyError = HttpError


class ClientGone(Exception):
    pass


class ClientReader:
    """The client's side of a connection, with a buffer of our own so that every wait has a deadline
    chosen here: the whole head must arrive by one deadline (a byte now and then does not extend it),
    the body gets `idle` seconds per read. What follows a request stays buffered for the next one."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = bytearray()
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def _recv(self, timeout: float, size: int = 16384) -> bool:
        if timeout <= 0:
            raise TimeoutError
        self.sock.settimeout(timeout)
        data = self.sock.recv(size)
        self.buf += data
        return bool(data)

    def read_head(self, deadline: float, max_line: int, max_fields: int) -> list[bytes]:
        """The head's lines without their CRLF, request line first (up to four empty lines before it are
        skipped, RFC 9112 2.2). TimeoutError at the deadline, ClientGone when the client closes first."""
        lines: list[bytes] = []
        start = scan = fields = skipped = 0
        while True:
            nl = self.buf.find(b"\n", scan)
            if nl < 0:
                partial = len(self.buf) - start
                if not lines and partial > max_line:
                    raise HttpError(414, "request line too long")
                if lines and fields + partial > max_fields:
                    raise HttpError(431, "request header fields too large")
                scan = len(self.buf)
                if not self._recv(deadline - time.monotonic()):
                    raise ClientGone
                continue
            if nl == start or self.buf[nl - 1] != 0x0D:
                raise HttpError(400, "a line not ended by CRLF")
            line = bytes(self.buf[start:nl - 1])
            start = scan = nl + 1
            if not lines:
                if line:
                    if len(line) > max_line:
                        raise HttpError(414, "request line too long")
                    lines.append(line)
                else:
                    skipped += 1
                    if skipped > 4:
                        raise HttpError(400, "empty lines instead of a request")
                continue
            if not line:
                del self.buf[:start]
                return lines
            fields += len(line) + 2
            if fields > max_fields:
                raise HttpError(431, "request header fields too large")
            if len(lines) > MAX_FIELDS:
                raise HttpError(431, "too many header fields")
            lines.append(line)

    def read(self, n: int, idle: float) -> bytes:
        """Up to n bytes, b"" at the end of the stream."""
        if not self.buf:
            self._recv(idle, CHUNK)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_line(self, limit: int, idle: float) -> bytes:
        """One CRLF-ended line without its CRLF (chunk sizes, trailers)."""
        scan = 0
        while (nl := self.buf.find(b"\n", scan)) < 0:
            if len(self.buf) > limit:
                raise HttpError(400, "bad chunked body")
            scan = len(self.buf)
            if not self._recv(idle, CHUNK):
                raise HttpError(400, "truncated body")
        if nl == 0 or self.buf[nl - 1] != 0x0D or nl - 1 > limit:
            raise HttpError(400, "bad chunked body")
        line = bytes(self.buf[:nl - 1])
        del self.buf[:nl + 1]
        return line


def parse_field(line: bytes) -> tuple[str, str]:
    if line[:1] in (b" ", b"\t"):
        raise HttpError(400, "folded header line")  # obs-fold: RFC 9112 5.2 lets a server reject it
    name, sep, value = line.partition(b":")
    if not sep or not FIELD_NAME.fullmatch(name):  # also "Name :" (RFC 9112 5.1: MUST be rejected)
        raise HttpError(400, "bad header line")
    value = value.strip(b" \t")
    if BAD_VALUE.search(value):
        raise HttpError(400, "control character in a header value")
    return name.decode("ascii"), value.decode("latin-1")


def parse_request_line(line: bytes) -> tuple[str, str, str]:
    """(method, target, version), or HttpError."""
    m = REQUEST_LINE.fullmatch(line)
    if not m:
        raise HttpError(400, "bad request line")
    if m[3] != b"1":
        raise HttpError(505, "HTTP version not supported")
    version = "HTTP/1.0" if m[4] == b"0" else "HTTP/1.1"  # a later 1.x is answered as 1.1 (RFC 9110 6.2)
    return m[1].decode("ascii"), m[2].decode("ascii"), version


def body_length(version: str, fields: list[tuple[str, str]]) -> int | None:
    """The body's length from the framing fields, None for chunked; HttpError for anything ambiguous."""
    names = [k.lower() for k, _ in fields]
    for single in SINGLE:
        if names.count(single) > 1:
            raise HttpError(400, f"more than one {single} header")
    if version == "HTTP/1.1" and "host" not in names:
        raise HttpError(400, "no Host header")
    values = {k.lower(): v for k, v in fields}
    te, cl = values.get("transfer-encoding"), values.get("content-length")
    if te is not None:
        if cl is not None:  # RFC 9112 6.3: a smuggling attempt or a broken client either way
            raise HttpError(400, "both Transfer-Encoding and Content-Length")
        if version != "HTTP/1.1" or te.lower() != "chunked":  # "chunked, identity", "gzip", "xchunked"...
            raise HttpError(400, "unsupported transfer-encoding")
        return None
    if cl is None:
        return 0
    if not CONTENT_LENGTH.fullmatch(cl):
        raise HttpError(400, "bad content-length")
    return int(cl)


# ---------------------------------------------------------------------------------------------- the path

def clean_path(path: str) -> str:
    """The path the upstream routes on: percent-decoded (Go decodes before routing), slashes collapsed,
    dot segments resolved, lower case (for a case-insensitive prefix match)."""
    p = re.sub(r"/+", "/", "/" + unquote(path))
    p = posixpath.normpath(p)
    return ("/" if p in (".", "") else p).lower()


def target_path(target: str) -> str:
    """The path of an origin-form request target ("//x" is a path here, not a host as urlsplit has it)."""
    return target.split("?", 1)[0].split("#", 1)[0]


def is_blocked(blocked: tuple[str, ...], target: str) -> bool:
    p = clean_path(target_path(target))
    return any(p.startswith(b) for b in blocked)  # a prefix match: /api/v1/writer is refused too
