"""The shared test toolkit (tests/support) does what every tier relies on."""
from __future__ import annotations

import socket
import time

import pytest

from tests.support import ports
from tests.support.wait import StopWaiting, WaitTimeout, wait_for


def test_free_ports_are_distinct_below_the_ephemeral_range_and_bindable():
    got = [ports.free_port() for _ in range(50)]
    assert len(set(got)) == 50, "a port was handed out twice in one process"
    top = ports.ephemeral_start()
    assert all(ports.LOWEST <= p < top for p in got), (min(got), max(got), top)
    with socket.socket() as s:
        s.bind(("127.0.0.1", got[-1]))


def test_a_port_in_use_is_skipped():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert not ports._bindable("127.0.0.1", port)


def test_ephemeral_start_falls_back_when_unreadable(tmp_path):
    assert ports.ephemeral_start(str(tmp_path / "missing")) == 32768
    (tmp_path / "range").write_text("40000\t60999\n")
    assert ports.ephemeral_start(str(tmp_path / "range")) == 40000


def test_wait_for_returns_the_first_truthy_value():
    calls = iter([None, 0, ValueError("not yet"), "ready"])

    def fn():
        v = next(calls)
        if isinstance(v, Exception):
            raise v
        return v
    assert wait_for(fn, timeout=5, interval=0.001) == "ready"


def test_wait_for_names_what_and_the_last_failure_at_the_deadline():
    def fn():
        raise ConnectionRefusedError("nobody home")
    with pytest.raises(WaitTimeout, match=r"waiting for the exporter; last: ConnectionRefusedError\('nobody home'\)"):
        wait_for(fn, timeout=0.05, interval=0.01, what="the exporter")


def test_stop_waiting_ends_the_wait_at_once():
    def fn():
        raise StopWaiting("the process exited with 2")
    start = time.monotonic()
    with pytest.raises(WaitTimeout, match="gave up waiting for x: the process exited with 2"):
        wait_for(fn, timeout=30, what="x")
    assert time.monotonic() - start < 5
