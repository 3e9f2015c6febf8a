"""The language server's connection to the hub: requests, pushes, reconnects.

:class:`HubConnection` keeps one websocket to one hub (``docs/protocol.md``).
It says ``hello`` with a client id that stays the same across reconnects,
matches replies to requests by ``id``, and hands every other message to
``on_message``.  When the connection drops it reconnects with exponential
backoff and calls ``on_connected`` again, so the owner can re-join its room
and re-open its documents (the OT client states re-send what was not
acknowledged).  The editor never waits on the network: ops are queued by
the client state machine, not here.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

__all__ = ["HubConnection", "HubError", "HubUnavailable"]

logger = logging.getLogger(__name__)

PROTOCOL_VERSION = 1


class HubError(Exception):
    """The hub answered a request with an error (``code`` is from docs/protocol.md)."""

    def __init__(self, msg: dict[str, Any]) -> None:
        self.code = str(msg.get("code"))
        self.message = str(msg.get("message"))
        super().__init__(f"{self.message} ({self.code})")


class HubUnavailable(Exception):
    """The hub cannot be reached right now."""


class HubConnection:
    """See the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        name: str,
        client_id: str,
        on_message: Callable[[dict[str, Any]], None],
        on_connected: Callable[[], Awaitable[None]],
        on_state: Callable[[str], None],
        min_backoff: float = 0.2,
        max_backoff: float = 10.0,
    ) -> None:
        self.url = url
        self.name = name
        self.client_id = client_id
        self.on_message = on_message
        self.on_connected = on_connected
        self.on_state = on_state
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.state = "disconnected"
        self.participant = ""
        self._ws: ClientConnection | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._closed = False
        self.attempts = 0

    @property
    def connected(self) -> bool:
        return self.state == "connected"

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="pairls-hub")

    async def wait_connected(self, timeout: float) -> None:
        """Wait until the connection is up (hello done); raises :class:`HubUnavailable`."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            raise HubUnavailable(f"cannot reach the hub at {self.url}") from None

    async def close(self) -> None:
        self._closed = True
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._set_state("disconnected")

    # -- sending -------------------------------------------------------------

    def send(self, msg: dict[str, Any]) -> bool:
        """Push *msg* now if connected; returns False if it was not sent."""
        ws = self._ws
        if ws is None or not self.connected:
            return False
        asyncio.get_running_loop().create_task(self._send(ws, msg))
        return True

    async def _send(self, ws: ClientConnection, msg: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps(msg, ensure_ascii=False, separators=(",", ":")))

    async def request(self, msg: dict[str, Any], timeout: float = 15.0) -> dict[str, Any]:
        """Send a request and wait for its reply; raises HubError or HubUnavailable."""
        ws = self._ws
        if ws is None or not self.connected:
            raise HubUnavailable(f"not connected to the hub at {self.url}")
        return await self._request(ws, msg, timeout)

    async def _request(self, ws: ClientConnection, msg: dict[str, Any], timeout: float) -> dict[str, Any]:
        rid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        try:
            await ws.send(json.dumps(dict(msg, id=rid), ensure_ascii=False, separators=(",", ":")))
            reply = await asyncio.wait_for(fut, timeout)
        except (ConnectionClosed, TimeoutError, ConnectionError):
            raise HubUnavailable(f"the hub at {self.url} did not answer") from None
        finally:
            self._waiting.pop(rid, None)
        if reply.get("type") == "error":
            raise HubError(reply)
        return reply

    # -- the connection loop ---------------------------------------------------

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.on_state(state)

    async def _run(self) -> None:
        delay = self.min_backoff
        while not self._closed:
            self._set_state("connecting")
            self.attempts += 1
            try:
                async with connect(self.url, max_size=None, compression=None, open_timeout=10) as ws:
                    self._ws = ws
                    reader = asyncio.get_running_loop().create_task(self._read(ws))
                    try:
                        welcome = await self._request(
                            ws,
                            {
                                "type": "hello",
                                "protocol": PROTOCOL_VERSION,
                                "name": self.name,
                                "clientId": self.client_id,
                            },
                            15.0,
                        )
                        self.participant = welcome.get("participant", "")
                        self._set_state("connected")
                        delay = self.min_backoff
                        self.attempts = 0
                        await self.on_connected()
                        self._ready.set()
                        await reader
                    finally:
                        reader.cancel()
                        self._ready.clear()
                        self._ws = None
            except asyncio.CancelledError:
                raise
            except (
                OSError,
                InvalidHandshake,
                InvalidURI,
                ConnectionClosed,
                HubUnavailable,
                TimeoutError,
            ) as exc:
                logger.info("hub connection: %s", type(exc).__name__)
            except HubError as exc:
                logger.warning("hub refused the session: %s", exc.code)
            except Exception:
                logger.exception("hub connection failed")
            self._set_state("disconnected")
            for fut in self._waiting.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("connection lost"))
            if self._closed:
                return
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, self.max_backoff)

    async def _read(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for frame in ws:
                try:
                    msg = json.loads(frame)
                except ValueError:
                    logger.warning("hub sent a frame that is not JSON")
                    continue
                for one in msg if isinstance(msg, list) else [msg]:
                    if isinstance(one, dict):
                        self._dispatch(one)

    def _dispatch(self, msg: dict[str, Any]) -> None:
        rid = msg.get("id")
        if type(rid) is int and rid in self._waiting:
            fut = self._waiting.pop(rid)
            if not fut.done():
                fut.set_result(msg)
            return
        try:
            self.on_message(msg)
        except Exception:
            logger.exception("handling a hub message failed")
