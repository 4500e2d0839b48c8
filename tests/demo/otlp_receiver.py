"""The OTLP sink of the native harness (tests/harness/otlp_sink.py), in the test process on 127.0.0.1 and
in memory only: it takes what the SDK exporters send (OTLP/HTTP protobuf at /v1/traces and /v1/logs) and
keeps every span and log record with its resource attributes."""
from __future__ import annotations

from tests.harness.otlp_sink import Listener, OtlpSink
from tests.support.wait import WaitTimeout, wait_for


class OtlpReceiver(OtlpSink):
    def __init__(self):
        super().__init__([Listener("http", "127.0.0.1", 0, {"/v1/traces": "traces", "/v1/logs": "logs"})])

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.listeners[0].port}"

    @property
    def spans(self) -> list[dict]:
        return self.store.spans

    @property
    def logs(self) -> list[dict]:
        return self.store.logs

    @property
    def lock(self):
        return self.store.lock

    def wait_for(self, what: str, fn, timeout: float = 20.0):
        def got():
            with self.lock:
                return fn()
        try:
            return wait_for(got, timeout, 0.1, what)
        except WaitTimeout as e:
            raise WaitTimeout(f"{e}; received {len(self.spans)} spans, {len(self.logs)} log records") from None
