"""The asyncio listener: per connection, read frames, dispatch in order, write responses."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from strom.protocol.errors import KafkaError, ProtocolError
from strom.protocol.frames import (
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

    peer: str
    connection_id: int
    client_id: str | None = None
    closed: bool = False
    state: dict = field(default_factory=dict)  # per-connection state handlers keep (SASL, ...)


@dataclass
class FileRange:
    """Bytes of a file to send as they are (sendfile), as a fetch response's record data."""

    fd: int
    offset: int
    length: int
    release: Callable[[], None] | None = None

    def __len__(self) -> int:
        return self.length


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
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, reuse_address=True, limit=1 << 16
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

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._next_id += 1
        cid = self._next_id
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if peername else "?"
        if len(self._connections) >= self.max_connections:
            log.warning(
                "refusing connection from %s: %d connections open", peer, self.max_connections
            )
            writer.close()
            return
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = asyncio.current_task()
        assert task is not None
        self._connections[cid] = task
        ctx = ConnectionContext(peer=peer, connection_id=cid)
        try:
            await self._serve(ctx, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except asyncio.CancelledError:
            pass
        except FrameTooLarge as e:
            log.warning("closing connection from %s: %s", peer, e)
        except Exception:
            log.exception("closing connection from %s after an unexpected error", peer)
        finally:
            ctx.closed = True
            self._connections.pop(cid, None)
            writer.close()

    async def _serve(
        self, ctx: ConnectionContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        loop = asyncio.get_running_loop()
        while True:
            prefix = await asyncio.wait_for(reader.readexactly(4), self.idle_timeout_s)
            n = frame_size(prefix, self.max_request_bytes)
            frame = await reader.readexactly(n)
            try:
                header, request = decode_request(frame)
            except UnsupportedRequest as e:
                ctx.client_id = e.header.client_id
                response = await self.unsupported(ctx, e)
                if response is None:
                    log.warning(
                        "closing connection from %s (client %s): %s",
                        ctx.peer,
                        e.header.client_id,
                        e,
                    )
                    return
                await self._write(loop, writer, response)
                continue
            except ProtocolError as e:
                log.warning("closing connection from %s: malformed request: %s", ctx.peer, e)
                return
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
                return
            if response is not None:
                await self._write(loop, writer, response)

    async def _write(
        self, loop: asyncio.AbstractEventLoop, writer: asyncio.StreamWriter, parts: list
    ) -> None:
        """Write a response: buffers as they are; file ranges by sendfile, never through Python."""
        pending: list = []
        try:
            for part in parts:
                if isinstance(part, FileRange):
                    if pending:
                        writer.writelines(pending)
                        pending = []
                    await _sendfile(loop, writer, part)
                else:
                    pending.append(part)
            if pending:
                writer.writelines(pending)
            await writer.drain()
        finally:
            for part in parts:
                if isinstance(part, FileRange) and part.release is not None:
                    part.release()


async def _sendfile(
    loop: asyncio.AbstractEventLoop, writer: asyncio.StreamWriter, part: FileRange
) -> None:
    await writer.drain()
    transport = writer.transport
    sock = transport.get_extra_info("socket")
    # asyncio's sendfile wants a file object; wrap the fd without taking ownership of it
    with os.fdopen(os.dup(part.fd), "rb", buffering=0) as f:
        sent = await loop.sendfile(transport, f, part.offset, part.length, fallback=True)
    if sent != part.length:
        raise ConnectionError(f"sent {sent} of {part.length} bytes to {sock}")
