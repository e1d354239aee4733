"""The asyncio listener: per connection, read frames, dispatch in order, write responses."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from strom.protocol.errors import KafkaError, ProtocolError
from strom.protocol.frames import (
    FileRange,
    FrameTooLarge,
    RequestHeader,
    UnsupportedRequest,
    decode_request,
    frame_size,
)

log = logging.getLogger(__name__)

# A handler answers (context, header, request) with the buffers of a whole response frame, or
# None when the request takes no response (Produce with acks=0).
Dispatch = Callable[["ConnectionContext", RequestHeader, object], Awaitable[list | None]]
UnsupportedHandler = Callable[["ConnectionContext", UnsupportedRequest], Awaitable[list | None]]


@dataclass
class ConnectionContext:
    """What a handler may know of the connection a request came on."""

    peer: str  # "host:port" of the client
    connection_id: int
    host: str = ""
    port: int = -1
    client_id: str | None = None
    closed: bool = False
    state: dict = field(default_factory=dict)  # per-connection state handlers keep (SASL, ...)


class KafkaServer:
    """Listens on one address; each connection reads, dispatches and answers in order."""

    def __init__(
        self,
        host: str,
        port: int,
        dispatch: Dispatch,
        unsupported: UnsupportedHandler,
        *,
        max_request_bytes: int = 104857600,
        max_connections: int = 10000,
        idle_timeout_s: float = 600.0,
    ) -> None:
        self.host = host
        self.port = port
        self.dispatch = dispatch
        self.unsupported = unsupported
        self.max_request_bytes = max_request_bytes
        self.max_connections = max_connections
        self.idle_timeout_s = idle_timeout_s
        self._server: asyncio.Server | None = None
        self._connections: dict[int, asyncio.Task] = {}
        self._next_id = 0

    @property
    def bound_port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), self.host, self.port, reuse_address=True
        )
        log.info("listening on %s:%d", self.host, self.bound_port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = list(self._connections.values())
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def serve_connection(self, conn: _Connection) -> None:
        """Answer a connection's requests one at a time, in order, as Kafka does."""
        ctx = conn.ctx
        loop = asyncio.get_running_loop()
        try:
            while True:
                frame = await conn.next_frame(self.idle_timeout_s)
                if frame is None:
                    return
                if not await self._answer(loop, conn, ctx, frame):
                    return
                # nothing kept a view of a big frame's buffer: the next big frame reuses it
                # (a fresh one costs page faults and zeroing: ~10% of the produce path)
                if len(frame) >= conn.FIRST_FRAME_BUFFER and sys.getrefcount(frame) == 2:
                    conn.spare = frame
                del frame
        except (ConnectionError, TimeoutError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("closing connection from %s after an unexpected error", ctx.peer)
        finally:
            ctx.closed = True
            self._connections.pop(ctx.connection_id, None)
            conn.transport.close()

    async def _answer(
        self,
        loop: asyncio.AbstractEventLoop,
        conn: _Connection,
        ctx: ConnectionContext,
        frame: bytearray,
    ) -> bool:
        """Decode, dispatch and write one request; False when the connection must close."""
        try:
            header, request = decode_request(frame)
        except UnsupportedRequest as e:
            ctx.client_id = e.header.client_id
            response = await self.unsupported(ctx, e)
            if response is None:
                log.warning(
                    "closing connection from %s (client %s): %s", ctx.peer, e.header.client_id, e
                )
                return False
            await conn.write(loop, response)
            return True
        except ProtocolError as e:
            log.warning("closing connection from %s: malformed request: %s", ctx.peer, e)
            return False
        ctx.client_id = header.client_id
        try:
            response = await self.dispatch(ctx, header, request)
        except KafkaError as e:
            log.warning(
                "closing connection from %s (client %s): %s on api %d v%d",
                ctx.peer,
                header.client_id,
                e,
                header.api_key,
                header.api_version,
            )
            return False
        if response is not None:
            await conn.write(loop, response)
        return True


class _Connection(asyncio.BufferedProtocol):
    """Reads frames straight into their own writable buffers (no copy; the produce path stamps
    offsets in place) and queues them for the connection's task; pauses reading when behind."""

    SCRATCH = 8192  # per connection: small requests are cut from it, larger get their own
    MAX_QUEUED = 16  # requests read ahead of the one being answered, at most...
    MAX_QUEUED_BYTES = 32 << 20  # ...and at most this many bytes of them
    FIRST_FRAME_BUFFER = 65536  # a larger frame's buffer starts here and doubles as bytes come

    def __init__(self, server: KafkaServer) -> None:
        self.server = server
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.ctx: ConnectionContext = None  # type: ignore[assignment]
        self._scratch = bytearray(self.SCRATCH)
        self._filled = 0  # bytes of _scratch holding data not yet framed
        self._frame: bytearray | None = None  # a frame larger than what scratch held
        self._frame_pos = 0
        self._frame_size = 0
        self._queued_bytes = 0
        self._frames: deque[bytearray | None] = deque()
        self._waiter: asyncio.Future | None = None
        self._drained: asyncio.Future | None = None
        self._paused = False
        self.spare: bytearray | None = None  # a big frame's buffer, free to reuse
        self._fd = -1  # the socket's descriptor: reads and writes that skip a loop iteration
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_since = 0.0  # loop time the connection's task began waiting for a frame

    # -- asyncio callbacks -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        server = self.server
        self.transport = transport  # type: ignore[assignment]
        server._next_id += 1
        peername = transport.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if peername else "?"
        self.ctx = ConnectionContext(
            peer=peer,
            connection_id=server._next_id,
            host=peername[0] if peername else "",
            port=peername[1] if peername else -1,
        )
        if len(server._connections) >= server.max_connections:
            log.warning(
                "refusing connection from %s: %d connections open", peer, server.max_connections
            )
            transport.close()
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if transport.get_extra_info("sslcontext") is None:
                # plain TCP only: with TLS the socket carries ciphertext, the transport's job
                self._fd = sock.fileno()
        task = asyncio.get_running_loop().create_task(server.serve_connection(self))
        server._connections[self.ctx.connection_id] = task

    def get_buffer(self, sizehint: int) -> memoryview:
        frame = self._frame
        if frame is not None:
            if self._frame_pos == len(frame):
                # grow by doubling: memory follows the bytes received, never the size claimed
                frame.extend(bytes(min(self._frame_size, 2 * len(frame)) - len(frame)))
            return memoryview(frame)[self._frame_pos :]
        return memoryview(self._scratch)[self._filled :]

    def buffer_updated(self, nbytes: int) -> None:
        if self._frame is not None:
            self._frame_pos += nbytes
        else:
            self._filled += nbytes
            self._cut_frames()
            if self._frame is None:
                return
        if self._frame_pos < self._frame_size:
            self._read_rest()
        if self._frame_pos == self._frame_size:
            self._push(self._frame)
            self._frame = None

    def _read_rest(self) -> None:
        """One more read, now, of what the socket holds of a big frame: the transport reads
        once per loop iteration, so a frame that did not fit the scratch would otherwise take
        another iteration to arrive. Only into the room the buffer has (it cannot grow here:
        the transport still holds the view get_buffer gave it). EOF and errors are left for
        the transport's next read."""
        frame = self._frame
        pos = self._frame_pos
        if frame is None or self._fd < 0 or pos >= len(frame):
            return
        try:
            n = os.readv(self._fd, [memoryview(frame)[pos:]])
        except OSError:  # BlockingIOError: nothing more yet
            return
        if n > 0:
            self._frame_pos = pos + n

    def _cut_frames(self) -> None:
        """Take every whole frame out of scratch; start a big buffer for one that won't fit."""
        buf = self._scratch
        pos = 0
        filled = self._filled
        while filled - pos >= 4:
            try:
                n = frame_size(memoryview(buf)[pos : pos + 4], self.server.max_request_bytes)
            except FrameTooLarge as e:
                log.warning("closing connection from %s: %s", self.ctx.peer, e)
                self._push(None)
                self.transport.close()
                self._filled = 0
                return
            start = pos + 4
            if filled - start >= n:
                self._push(buf[start : start + n])
                pos = start + n
                continue
            if n > len(buf) - start:
                have = filled - start
                frame = self.spare
                if frame is not None and len(frame) >= n // 2:
                    self.spare = None
                    if len(frame) > n:
                        del frame[n:]
                    elif len(frame) < n:
                        frame.extend(bytes(n - len(frame)))
                else:
                    frame = bytearray(min(n, max(self.FIRST_FRAME_BUFFER, 2 * have)))
                frame[:have] = buf[start:filled]
                self._frame = frame
                self._frame_size = n
                self._frame_pos = have
                self._filled = 0
                return
            break
        if pos:
            rest = filled - pos
            buf[:rest] = buf[pos:filled]
            self._filled = rest

    def _push(self, frame: bytearray | None) -> None:
        self._frames.append(frame)
        if frame is not None:
            self._queued_bytes += len(frame)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        behind = len(self._frames) >= self.MAX_QUEUED or self._queued_bytes >= self.MAX_QUEUED_BYTES
        if behind and not self._paused:
            self._paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self._push(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._fd = -1  # closed: the number may soon name another socket
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        self._push(None)
        if self._drained is not None and not self._drained.done():
            self._drained.set_exception(ConnectionError("connection lost"))

    def pause_writing(self) -> None:
        if self._drained is None or self._drained.done():
            self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    # -- used by the connection's task -------------------------------------------------------
    async def next_frame(self, timeout_s: float) -> bytearray | None:
        """The next request frame (None at end of stream); TimeoutError after timeout_s idle.
        One idle timer per connection, re-armed when it fires, not one per request."""
        while not self._frames:
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            self._idle_since = now = loop.time()
            if self._idle_timer is None:
                self._idle_timer = loop.call_at(now + timeout_s, self._check_idle, timeout_s)
            try:
                await waiter
            finally:
                self._waiter = None
        frame = self._frames.popleft()
        if frame is not None:
            self._queued_bytes -= len(frame)
        if (
            self._paused
            and len(self._frames) < self.MAX_QUEUED // 2
            and self._queued_bytes < self.MAX_QUEUED_BYTES // 2
        ):
            self._paused = False
            self.transport.resume_reading()
        return frame

    def _check_idle(self, timeout_s: float) -> None:
        self._idle_timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # answering a request: the next wait arms the timer again
        loop = asyncio.get_running_loop()
        due = self._idle_since + timeout_s
        if loop.time() >= due:
            waiter.set_exception(TimeoutError())
        else:
            self._idle_timer = loop.call_at(due, self._check_idle, timeout_s)

    async def write(self, loop: asyncio.AbstractEventLoop, parts: list) -> None:
        """Write a response: buffers as they are; file ranges by sendfile, never through Python."""
        transport = self.transport
        pending: list = []
        try:
            for part in parts:
                if isinstance(part, FileRange):
                    if pending:
                        self._send(pending)
                        pending = []
                    await self._drain()
                    await _sendfile(loop, transport, part)
                else:
                    pending.append(part)
            if pending:
                self._send(pending)
            await self._drain()
        finally:
            for part in parts:
                if isinstance(part, FileRange) and part.release is not None:
                    part.release()

    def _send(self, parts: list) -> None:
        """Write buffers: straight to the socket in one writev when nothing is queued before
        them (asyncio 3.11's writelines joins them into one copy first), the rest queued on
        the transport."""
        transport = self.transport
        if (
            self._fd < 0
            or len(parts) > _IOV_MAX
            or transport.get_write_buffer_size()
            or transport.is_closing()
        ):
            transport.writelines(parts)
            return
        try:
            sent = os.writev(self._fd, parts)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            transport.writelines(parts)  # the transport reports the error and closes
            return
        for i, part in enumerate(parts):
            n = len(part) if not isinstance(part, memoryview) else part.nbytes
            if sent < n:
                transport.write(memoryview(part)[sent:] if sent else part)
                transport.writelines(parts[i + 1 :])
                return
            sent -= n

    async def _drain(self) -> None:
        if self.transport.is_closing():
            raise ConnectionError("connection closed")
        if self._drained is not None and not self._drained.done():
            await self._drained


_IOV_MAX = 1024  # buffers one writev takes (Linux)


async def _sendfile(
    loop: asyncio.AbstractEventLoop, transport: asyncio.Transport, part: FileRange
) -> None:
    # asyncio's sendfile wants a file object; wrap a duplicate of the fd, which stays ours
    with os.fdopen(os.dup(part.fd), "rb", buffering=0) as f:
        sent = await loop.sendfile(transport, f, part.offset, part.length, fallback=True)
    if sent != part.length:
        raise ConnectionError(f"sent {sent} of {part.length} bytes")
