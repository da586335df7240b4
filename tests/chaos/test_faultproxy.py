"""The fault proxy itself: each mode does what the chaos tests rely on."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.chaos.faultproxy import FaultProxy


@pytest.fixture
def echo() -> Iterator[int]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            threading.Thread(target=lambda c=conn: _echo(c), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield srv.getsockname()[1]
    stop.set()
    srv.close()


def _echo(conn: socket.socket) -> None:
    with conn:
        try:
            while data := conn.recv(4096):
                conn.sendall(data)
        except ConnectionResetError:
            return  # the proxy's reset mode under test: the echo server just sees its peer go


def roundtrip(port: int, timeout: float = 2.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"ping")
        return s.recv(4)


def test_modes(echo: int) -> None:
    proxy = FaultProxy("127.0.0.1", echo)
    try:
        assert roundtrip(proxy.port) == b"ping"
        proxy.set_mode("refuse")
        with pytest.raises(ConnectionRefusedError):
            roundtrip(proxy.port)
        proxy.set_mode("reset")
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as s:
                time.sleep(0.2)
                s.sendall(b"ping")
                if not s.recv(4):
                    raise ConnectionResetError("closed")
        proxy.set_mode("delay", delay_s=0.3)
        started = time.monotonic()
        assert roundtrip(proxy.port) == b"ping"
        assert time.monotonic() - started >= 0.5  # held each way
        proxy.set_mode("blackhole")
        with pytest.raises((socket.timeout, TimeoutError)):
            roundtrip(proxy.port, timeout=0.5)
        proxy.set_mode("pass")
        assert roundtrip(proxy.port) == b"ping"
    finally:
        proxy.close()


def test_open_connection_is_cut_on_reset(echo: int) -> None:
    proxy = FaultProxy("127.0.0.1", echo)
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as s:
            s.sendall(b"ping")
            assert s.recv(4) == b"ping"
            proxy.set_mode("reset")
            with pytest.raises((ConnectionResetError, BrokenPipeError, AssertionError)):
                s.sendall(b"ping")
                assert s.recv(4) == b"ping"
    finally:
        proxy.close()
