"""A loopback TCP proxy the fault tests control: pass traffic through, slow it, black-hole it, or reset it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Literal

Mode = Literal["pass", "blackhole", "reset"]


class TcpProxy:
    """Forwards 127.0.0.1:`listen_port` to 127.0.0.1:`target_port`, on an event loop in its own thread.

    - `blackhole()`: a network partition. Connections stay open, nothing gets through (held bytes
      are delivered if the link comes back before the peer gives up), new connections are silent.
    - `reset()`: every connection is torn down and new ones are refused at once.
    - `delay(s)`: each chunk waits `s` seconds before it is forwarded, in both directions.
    - `restore()`: back to passing everything at once.
    """

    def __init__(self, target_port: int, listen_port: int) -> None:
        self.target_port = target_port
        self.listen_port = listen_port
        self.mode: Mode = "pass"
        self.delay_s = 0.0
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"proxy-{listen_port}", daemon=True)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._link_up: asyncio.Event | None = None  # set unless black-holed; lives on the proxy's loop

    def start(self) -> TcpProxy:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._serve(), self._loop)
        future.result(timeout=10)
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()

    def blackhole(self) -> None:
        self._switch("blackhole")

    def reset(self) -> None:
        self._switch("reset")

    def delay(self, seconds: float) -> None:
        self.delay_s = seconds

    def restore(self) -> None:
        self.delay_s = 0.0
        self._switch("pass")

    def _switch(self, mode: Mode) -> None:
        def apply() -> None:
            self.mode = mode
            assert self._link_up is not None
            if mode == "blackhole":
                self._link_up.clear()
            else:
                self._link_up.set()
            if mode == "reset":
                self._abort_all()

        asyncio.run_coroutine_threadsafe(self._call(apply), self._loop).result(timeout=10)

    @staticmethod
    async def _call(function: Callable[[], None]) -> None:
        function()

    async def _serve(self) -> None:
        self._link_up = asyncio.Event()
        self._link_up.set()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.listen_port, reuse_address=True)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        self._abort_all()

    def _abort_all(self) -> None:
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.mode == "reset":
            writer.transport.abort()
            return
        self._open.add(writer)
        try:
            if self.mode == "blackhole":
                await self._swallow(reader)
                return
            try:
                upstream_reader, upstream_writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", self.target_port), timeout=3)
            except (OSError, TimeoutError):
                return
            self._open.add(upstream_writer)
            try:
                await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))
            finally:
                self._open.discard(upstream_writer)
                upstream_writer.transport.abort()
        finally:
            self._open.discard(writer)
            writer.transport.abort()

    async def _swallow(self, reader: asyncio.StreamReader) -> None:
        """A connection made during a partition: read nothing back; drop it once the link is back."""
        while self.mode == "blackhole":
            try:
                data = await asyncio.wait_for(reader.read(65536), timeout=0.2)
            except TimeoutError:
                continue
            if not data:
                return

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction; with a delay each chunk arrives `delay_s` after it was read (latency, in order)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        deliver = asyncio.create_task(self._deliver(queue, writer))
        try:
            while not deliver.done():
                data = await reader.read(65536)
                if not data:
                    break
                queue.put_nowait((loop.time() + self.delay_s, data))
            queue.put_nowait((0.0, b""))
            await deliver
        except (ConnectionError, OSError):
            return
        finally:
            deliver.cancel()
            writer.transport.abort()

    async def _deliver(self, queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                due, data = await queue.get()
                if not data:
                    return
                await asyncio.sleep(max(0.0, due - loop.time()))
                assert self._link_up is not None
                await self._link_up.wait()  # a partition holds what is in flight, as TCP would
                if self.mode == "reset":
                    return
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            return
