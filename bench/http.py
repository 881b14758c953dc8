"""A minimal HTTP/1.1 keep-alive client on asyncio streams, so the load generator costs little CPU.

On a 2-core machine the client shares the CPU with the server it measures; httpx spends several
times more per request than this. Only what the benchmark needs: POST/GET, Content-Length bodies.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


class HTTPError(RuntimeError):
    pass


@dataclass
class Response:
    status: int
    body: bytes


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, f"{host}:{port}")

    async def request(self, method: str, path: str, body: bytes = b"", content_type: str = "application/json",
                      headers: bytes = b"") -> Response:
        """`headers`: extra header lines, already encoded, each ending in CRLF."""
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
        if method == "POST":
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + headers + b"\r\n" + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise HTTPError("connection closed by server")
        status = int(status_line.split(b" ", 2)[1])
        length, chunked, close = 0, False, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readline()).strip(), 16)
                if size == 0:
                    await self.reader.readline()
                    break
                parts.append(await self.reader.readexactly(size + 2))
            data = b"".join(p[:-2] for p in parts)
        else:
            data = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return Response(status, data)

    def close(self) -> None:
        self.writer.close()


@dataclass
class Pool:
    """Idle keep-alive connections to one server; opens more on demand."""

    host: str
    port: int
    headers: dict[str, str] = field(default_factory=dict)
    """Sent with every request (e.g. Authorization)."""
    idle: list[Connection] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._headers = b"".join(f"{k}: {v}\r\n".encode() for k, v in self.headers.items())

    async def request(self, method: str, path: str, body: bytes = b"",
                      content_type: str = "application/json") -> Response:
        """Send on an idle connection (or a new one). A reused connection the server has meanwhile closed
        (its keep-alive timeout) fails before any answer: then the request is sent once more on a new one."""
        while self.idle:
            conn = self.idle.pop()
            if conn.reader.at_eof() or conn.writer.is_closing():
                conn.close()
                continue
            try:
                return self._keep(conn, await conn.request(method, path, body, content_type, self._headers))
            except (HTTPError, ConnectionError, asyncio.IncompleteReadError):
                conn.close()
                break
            except BaseException:
                conn.close()
                raise
        conn = await Connection.open(self.host, self.port)
        try:
            return self._keep(conn, await conn.request(method, path, body, content_type, self._headers))
        except BaseException:
            conn.close()
            raise

    def _keep(self, conn: Connection, response: Response) -> Response:
        if not conn.writer.is_closing():
            self.idle.append(conn)
        return response

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()


@dataclass
class LoadResult:
    requests: int
    items: int
    """Items the server accepted (one per request with an `ok` status, or what `items_of` counts)."""
    seconds: float
    errors: int
    statuses: dict[int, int]

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else 0.0


async def closed_loop(host: str, port: int, path: str, bodies: Sequence[bytes], concurrency: int,
                      ok: tuple[int, ...], content_type: str = "application/json",
                      items_of: Callable[[Response], int] | None = None,
                      headers: dict[str, str] | None = None) -> LoadResult:
    """POST every body, `concurrency` requests in flight at a time; time from first send to last answer."""
    pool = Pool(host, port, headers or {})
    conns = [await Connection.open(host, port) for _ in range(concurrency)]  # connect before the clock starts
    pool.idle.extend(conns)
    statuses: dict[int, int] = {}
    errors = items = 0
    position = 0

    async def client() -> None:
        nonlocal position, errors, items
        while position < len(bodies):
            body = bodies[position]
            position += 1
            try:
                response = await pool.request("POST", path, body, content_type)
                statuses[response.status] = statuses.get(response.status, 0) + 1
                if response.status not in ok:
                    errors += 1
                else:
                    items += items_of(response) if items_of is not None else 1
            except (OSError, HTTPError, asyncio.IncompleteReadError):
                errors += 1

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    seconds = time.perf_counter() - start
    pool.close()
    return LoadResult(len(bodies), items, seconds, errors, statuses)
