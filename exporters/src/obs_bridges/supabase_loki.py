"""Supabase's Loki log drain (issue 16), the pure core: a Loki push body as Supabase (Logflare's Loki adaptor)
sends it, turned into an OTLP/JSON logs request for the collector's Supabase receiver, the same place the
OTLP drain goes (its pipeline derives the bounded labels; otelcol/config.yaml, logs/supabase).

Supabase sends JSON, gzip-encoded by default: {"streams": [{"stream": {"source": "supabase", "service":
<log source>}, "values": [[<ns timestamp>, <event_message>, {<event fields flattened with "_">}], ...]}]}.
Each stream becomes one resource with service.name = its `service` (the collector maps it to the source enum);
each value a record: the time, the line as body, the flattened fields as attributes (strings, bounded)."""

from __future__ import annotations

import json
import zlib
from typing import Any

from obs_bridges.parsing import ParseError

# A gzip body may expand: refuse past this many bytes decompressed (a 4 MiB gzip bomb is gigabytes).
MAX_DECOMPRESSED_BYTES = 32 * 1024 * 1024
MAX_STREAMS = 1000
MAX_VALUES = 10_000  # Supabase sends at most 250 events a request
MAX_FIELDS = 500  # Supabase asks Loki to allow 500 structured-metadata fields per line
FIELD_VALUE_MAX = 2048
LINE_MAX = 256 * 1024
NAME_MAX = 128


def decompress(body: bytes, encoding: str | None) -> bytes:
    """The body without its Content-Encoding (identity or gzip), never more than MAX_DECOMPRESSED_BYTES."""
    enc = (encoding or "identity").strip().lower()
    if enc in ("", "identity"):
        return body
    if enc not in ("gzip", "x-gzip"):
        raise ParseError(f"Content-Encoding {enc[:20]!r} is not supported: send identity or gzip")
    d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(body, MAX_DECOMPRESSED_BYTES + 1)
    except zlib.error:
        raise ParseError("the body is not valid gzip") from None
    if len(out) > MAX_DECOMPRESSED_BYTES or d.unconsumed_tail:
        raise ParseError(f"the body expands past {MAX_DECOMPRESSED_BYTES} bytes")
    return out


def to_otlp(body: bytes, encoding: str | None = None) -> tuple[bytes, int]:
    """(OTLP/JSON ExportLogsServiceRequest, record count) for a Loki push body; ParseError for anything that
    is not one (the whole push is refused, so the sender sees it)."""
    raw = decompress(body, encoding)
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        raise ParseError("not a Loki push: the body is not JSON (Supabase sends JSON, not protobuf)") from None
    streams = doc.get("streams") if isinstance(doc, dict) else None
    if not isinstance(streams, list) or len(streams) > MAX_STREAMS:
        raise ParseError("not a Loki push: expected {\"streams\": [...]}")
    resource_logs, count = [], 0
    for i, s in enumerate(streams):
        if not isinstance(s, dict) or not isinstance(s.get("values"), list):
            raise ParseError(f"stream {i}: expected an object with values")
        labels = s.get("stream") if isinstance(s.get("stream"), dict) else {}
        service = labels.get("service")
        service = service[:NAME_MAX] if isinstance(service, str) and service.strip() else "unknown"
        records = [_record(v, i, j) for j, v in enumerate(s["values"])]
        count += len(records)
        if count > MAX_VALUES:
            raise ParseError(f"a push of more than {MAX_VALUES} lines")
        if records:
            resource_logs.append({"resource": {"attributes": [_kv("service.name", service)]},
                                  "scopeLogs": [{"scope": {"name": "supabase-loki-drain"}, "logRecords": records}]})
    return json.dumps({"resourceLogs": resource_logs}, separators=(",", ":")).encode(), count


def _record(v: Any, i: int, j: int) -> dict:
    if not isinstance(v, list) or len(v) not in (2, 3) or not isinstance(v[0], str) or not v[0].isdigit() \
            or len(v[0]) > 20 or not isinstance(v[1], str):
        raise ParseError(f"stream {i} value {j}: expected [\"<unix ns>\", \"<line>\", {{fields}}]")
    fields = v[2] if len(v) == 3 else {}
    if not isinstance(fields, dict):
        raise ParseError(f"stream {i} value {j}: the structured metadata is not an object")
    attrs = [_kv(str(k)[:NAME_MAX], str(val)[:FIELD_VALUE_MAX]) for k, val in list(fields.items())[:MAX_FIELDS]
             if isinstance(val, (str, int, float, bool))]
    return {"timeUnixNano": v[0], "observedTimeUnixNano": v[0], "body": {"stringValue": v[1][:LINE_MAX]},
            "attributes": attrs}


def _kv(key: str, value: str) -> dict:
    return {"key": key, "value": {"stringValue": value}}


__all__ = ["MAX_DECOMPRESSED_BYTES", "decompress", "to_otlp"]
