"""Loki and Tempo on S3-compatible object storage (docker-compose.s3.yml over docker-compose.yml, SeaweedFS as
the store): the stack comes up healthy, Loki and Tempo run the S3 configs, a log and a span pushed through the
collector are found, and Loki's chunks and Tempo's blocks land as objects in their buckets. The S3 port
refuses an unsigned request. Runs after the main stack's tests: it takes the same host ports, so the main
stack goes down (with its volumes) first, as for the Railway images."""
from __future__ import annotations

import json
import secrets
import time
import urllib.parse

import pytest

from tests.docker.composectl import Compose, http, log, started
from tests.docker.conftest import PROJECT, URL
from tests.e2e import smoke
from tests.harness.compose import ROOT

OVERLAY = "docker-compose.s3.yml"
CREDENTIALS = ROOT / "secrets" / "s3_credentials"
DIR_BIT = 1 << 31  # os.FileMode's directory bit, in the filer's JSON listing (weed/filer/entry.go Attr.Mode)


@pytest.fixture(scope="module")
def s3_stack():
    """The operator's secrets/s3_credentials if there is one; else a random one for this run, written only
    where the stack really starts (not on a skip) and removed after."""
    written = []

    def prepare() -> None:
        if CREDENTIALS.exists():
            log("using the operator's secrets/s3_credentials")
            return
        CREDENTIALS.write_text(f"[default]\naws_access_key_id = obs-dt-{secrets.token_hex(4)}\n"
                               f"aws_secret_access_key = {secrets.token_urlsafe(30)}\n")
        written.append(CREDENTIALS)
        CREDENTIALS.chmod(0o444)  # read by SeaweedFS (uid 1000) and Loki and Tempo (uid 10001)

    try:
        yield from started(Compose(PROJECT + "-s3", [OVERLAY]), prepare)
    finally:
        for path in written:
            path.unlink(missing_ok=True)


def bucket_files(stack: Compose, bucket: str, depth: int = 5) -> list[str]:
    """Every object under /buckets/<bucket> down to `depth` directories, from the filer's JSON listing
    (asked inside the seaweedfs container: the filer port is not published)."""
    files, dirs = [], [f"/buckets/{bucket}"]
    for _ in range(depth):
        nxt = []
        for d in dirs:
            out = stack.exec("seaweedfs", "curl", "-fsS", "-H", "Accept: application/json",
                             f"http://127.0.0.1:8888{urllib.parse.quote(d)}/?limit=1000")
            for e in json.loads(out).get("Entries") or []:
                (nxt if e["Mode"] & DIR_BIT else files).append(e["FullPath"])
        dirs = nxt
        if not dirs:
            break
    return files


def test_loki_and_tempo_store_in_the_bucket(s3_stack):
    rows = {r["Service"]: r for r in s3_stack.ps()}
    bad = [s for s, r in rows.items() if r.get("State") != "running" or r.get("Health") != "healthy"]
    assert "seaweedfs" in rows and not bad, f"{bad}\n{s3_stack.diagnosis()}"
    assert s3_stack.exec("seaweedfs", "id", "-u").strip() == "1000"

    # the running configs are the S3 ones (Loki's /config and Tempo's /status/config print what they loaded)
    status, cfg = http(f"{URL['loki']}/config")
    assert status == 200 and "object_store: s3" in cfg and "seaweedfs:8333" in cfg, cfg[:2000]
    status, cfg = http(f"{URL['tempo']}/status/config")
    assert status == 200 and "backend: s3" in cfg and "seaweedfs:8333" in cfg, cfg[:2000]

    # unsigned S3 requests are refused: the bucket is not open to whoever reaches the network
    code = s3_stack.exec("seaweedfs", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                         "http://127.0.0.1:8333/loki/").strip()
    assert code in ("401", "403"), f"anonymous ListObjects answered {code}"

    sent = smoke.send_signals(URL["otlp"], "obs-smoke-s3")
    smoke.poll("log in Loki (S3 overlay)", lambda: smoke.loki_has_log(URL["loki"], sent), timeout=120, every=3)
    smoke.poll("trace in Tempo (S3 overlay)", lambda: smoke.tempo_has_trace(URL["tempo"], sent), timeout=120,
               every=3)

    # Loki: flush the in-memory chunks now instead of after chunk_idle_period; they land under the tenant
    status, body = http(f"{URL['loki']}/flush", method="POST")
    assert status in (200, 204), (status, body)
    chunks = smoke.poll("Loki chunks in the bucket `loki`",
                        lambda: [f for f in bucket_files(s3_stack, "loki") if f.startswith("/buckets/loki/fake/")],
                        timeout=120, every=5)
    log(f"loki bucket: {len(chunks)} chunk objects")
    # Tempo: the live-store cuts a block after max_block_duration (30 s) and completes it into the backend
    start = time.monotonic()
    blocks = smoke.poll("a Tempo block in the bucket `tempo`",
                        lambda: [f for f in bucket_files(s3_stack, "tempo")
                                 if f.startswith("/buckets/tempo/single-tenant/") and f.endswith("/meta.json")],
                        timeout=240, every=10)
    log(f"tempo bucket: {len(blocks)} blocks after {time.monotonic() - start:.0f} s")
