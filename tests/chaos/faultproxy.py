"""A TCP fault proxy (asyncio, in a thread of its own) that the chaos tests put in front of a dependency.

Modes, switched at any time from the test thread:
- ``pass``: forward bytes both ways;
- ``refuse``: stop listening (new connections get ECONNREFUSED) and close the open ones;
- ``reset``: accept, then reset (RST) every connection, open or new;
- ``delay``: forward, each chunk held ``delay_s`` first (a slow dependency);
- ``blackhole``: accept and read, forward nothing, answer nothing (a hung peer: clients hit their timeouts);
- ``drop-replies``: forward requests to the dependency, but close the connection as soon as it answers,
  dropping the answer (the request was executed, the client never learns it: it must retry or give up).
"""
from __future__ import annotations

import asyncio
import socket
import struct
import threading
from concurrent.futures import Future
from typing import Any

MODES = ("pass", "refuse", "reset", "delay", "blackhole", "drop-replies")


class FaultProxy:
    def __init__(self, target_host: str, target_port: int, *, listen_port: int = 0, name: str = "proxy") -> None:
        self.target = (target_host, target_port)
        self.name = name
        self.mode = "pass"
        self.delay_s = 0.0
        self.connections = 0
        self.dropped_replies = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"faultproxy-{name}", daemon=True)
        self._thread.start()
        # bind once, keep the port across refuse/pass cycles
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", listen_port))
        self.port = int(self._sock.getsockname()[1])
        self._sock.close()
        self._call(self._listen())

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _call(self, coro: Any, timeout: float = 10.0) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return fut.result(timeout)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def _unlisten(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _drop_all(self, rst: bool) -> None:
        for w in list(self._writers):
            _abort(w, rst)
        self._writers.clear()

    def set_mode(self, mode: str, *, delay_s: float = 0.0) -> None:
        assert mode in MODES, mode

        async def switch() -> None:
            self.mode, self.delay_s = mode, delay_s
            if mode == "refuse":
                await self._unlisten()
                await self._drop_all(rst=False)
            else:
                await self._listen()
                if mode == "reset":
                    await self._drop_all(rst=True)

        self._call(switch())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.mode == "reset":
            _abort(writer, rst=True)
            return
        if self.mode == "blackhole":
            self._writers.add(writer)
            try:
                while await reader.read(65536):
                    pass
            except (ConnectionError, OSError):
                pass
            finally:
                self._writers.discard(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _abort(writer, rst=True)
            return
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer, reply=up_writer))
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                _abort(w, rst=False)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    reply: asyncio.StreamWriter | None = None) -> None:
        """Copy ``reader`` to ``writer``; ``reply`` (the dependency's side) is set on the answering direction."""
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if self.mode == "delay" and self.delay_s:
                    await asyncio.sleep(self.delay_s)
                while self.mode == "blackhole":  # an open connection that goes silent mid-stream
                    await asyncio.sleep(0.05)
                if self.mode in ("reset", "refuse"):
                    break
                if self.mode == "drop-replies" and reply is not None:
                    self.dropped_replies += 1
                    _abort(reply, rst=False)  # the request was executed; its answer never arrives
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            _abort(writer, rst=self.mode == "reset")

    def close(self) -> None:
        try:
            self._call(self._unlisten())
            self._call(self._drop_all(rst=False))
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)


def _abort(writer: asyncio.StreamWriter, rst: bool) -> None:
    try:
        if rst:
            sock = writer.get_extra_info("socket")
            if sock is not None:
                # SO_LINGER 0: close() sends RST instead of FIN (a cut connection, not a polite goodbye)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        else:
            writer.close()
    except (OSError, RuntimeError):
        pass
