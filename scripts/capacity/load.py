"""The load generator: OTLP/HTTP requests at a fixed rate, each with fresh trace ids."""
from __future__ import annotations

import http.client
import os
import threading
import time

from scripts.capacity.payloads import BATCH, MARK


def send_at_rate(port: int, path: str, payload: bytes, per_s: int, seconds: float, threads: int = 2) -> int:
    """Post `payload` (BATCH items, MARK replaced each time) at per_s items/s for `seconds`; items accepted."""
    sent = [0] * threads
    end = time.monotonic() + seconds
    interval = threads * BATCH / per_s

    def worker(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        nxt = time.monotonic() + k * interval / threads
        while True:
            now = time.monotonic()
            if now >= end:
                break
            if now < nxt:
                time.sleep(nxt - now)
                if time.monotonic() >= end:
                    break
            nxt += interval
            conn.request("POST", path, payload.replace(MARK, os.urandom(12)),
                         {"Content-Type": "application/x-protobuf"})
            r = conn.getresponse()
            r.read()
            if r.status == 200:
                sent[k] += BATCH
        conn.close()

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(sent)
