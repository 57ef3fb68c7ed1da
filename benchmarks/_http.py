"""A lean HTTP/1.1 client for the API case: one keep-alive connection per worker, h11 over trio sockets.

The load generator must cost less than the node it loads. httpx's connection pool walks every
connection and request under a lock for each request: with 64 requests outstanding the generator spent
4.8 ms of CPU per request (1.1 ms at 16) and, on a shared 2-core machine, was the bottleneck, so that
more concurrency measured less throughput. Here each worker owns one connection and does nothing but
frame a request and read its response (the same bytes on the wire: a JSON POST with a bearer token).
"""

from __future__ import annotations

import json
from typing import Any

import h11
import trio

from channeld.errors import LocalFault

READ_SIZE = 65536


class HttpFailure(LocalFault):
    """The API answered something a well-formed HTTP/1.1 exchange does not allow."""


class Connection:
    """One keep-alive HTTP/1.1 connection to the API; requests on it go one after another."""

    def __init__(self, stream: trio.SocketStream, host: str, port: int, token: str) -> None:
        self.stream = stream
        self.address = (host, port)
        self.state = h11.Connection(h11.CLIENT)
        self.headers = [("host", f"{host}:{port}"), ("authorization", f"Bearer {token}"),
                        ("content-type", "application/json")]

    @classmethod
    async def open(cls, host: str, port: int, token: str) -> Connection:
        return cls(await trio.open_tcp_stream(host, port), host, port, token)

    async def post(self, target: str, body: dict[str, Any],
                   headers: list[tuple[str, str]] | None = None) -> tuple[int, Any]:
        """POST `body` as JSON (with extra `headers`); return the status and the decoded JSON answer."""
        payload = json.dumps(body).encode()
        fields = [*self.headers, *(headers or []), ("content-length", str(len(payload)))]
        request = h11.Request(method="POST", target=target, headers=fields)
        await self.stream.send_all(self.state.send(request) + self.state.send(h11.Data(data=payload))
                                   + self.state.send(h11.EndOfMessage()))
        status, chunks = await self._response()
        if self.state.our_state is h11.MUST_CLOSE:
            await self._reconnect()  # the server ends a connection after so many requests (hypercorn: 1000)
        else:
            self.state.start_next_cycle()
        return status, json.loads(b"".join(chunks))

    async def _reconnect(self) -> None:
        await self.stream.aclose()
        self.stream = await trio.open_tcp_stream(*self.address)
        self.state = h11.Connection(h11.CLIENT)

    async def _response(self) -> tuple[int, list[bytes]]:
        status = 0
        chunks: list[bytes] = []
        while True:
            event = self.state.next_event()
            if event is h11.NEED_DATA:
                self.state.receive_data(await self.stream.receive_some(READ_SIZE))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return status, chunks
            elif isinstance(event, h11.ConnectionClosed):
                raise HttpFailure("the API closed the connection mid-response")

    async def aclose(self) -> None:
        await self.stream.aclose()
