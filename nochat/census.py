"""Live connections on every node, for admins: the asking node signals every node
(`connections_wanted`), each answers with its own (`connections_listed`), and the asker
collects answers until as many nodes as the broker counts have answered, or the bound
passes (a node that is down or slow is then missing from the list, not waited for).
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

import trio

from .broker import Broker, SignalKind, SignalPayload
from .sessions import ConnectionRegistry

log = logging.getLogger(__name__)

#: Longest wait for the other nodes' answers.
ANSWER_TIMEOUT_S = 2.0
#: Most connections one node lists (a signal is one Redis message: keep it small).
MAX_LISTED_PER_NODE = 1000


class Census:
    def __init__(self, registry: ConnectionRegistry, broker: Broker) -> None:
        self._registry = registry
        self._broker = broker
        #: Open asks: the answers so far (by node), and the event their count sets.
        self._asks: dict[str, tuple[dict[str, list[Any]], trio.Event, list[int]]] = {}
        broker.on_signal(SignalKind.CONNECTIONS_WANTED, self._wanted)
        broker.on_signal(SignalKind.CONNECTIONS_LISTED, self._listed)

    def local(self) -> list[dict[str, Any]]:
        """This node's connections, at most MAX_LISTED_PER_NODE."""
        reg = self._registry
        out: list[dict[str, Any]] = []
        for conn in reg.all():
            if len(out) >= MAX_LISTED_PER_NODE:
                break
            out.append(
                {
                    "id": conn.conn_id,
                    "user": conn.user.name,
                    "node": reg.node,
                    "address": conn.address,
                    "since": conn.since_ms,
                    "rooms": conn.joined_rooms(),
                }
            )
        return out

    async def everywhere(self) -> list[dict[str, Any]]:
        """Every node's connections, oldest first."""
        ask = secrets.token_hex(8)
        answers: dict[str, list[Any]] = {}
        done = trio.Event()
        expected = [1]
        self._asks[ask] = (answers, done, expected)
        try:
            with trio.move_on_after(ANSWER_TIMEOUT_S):
                expected[0] = await self._broker.nodes()
                self._broker.signal(SignalKind.CONNECTIONS_WANTED, {"ask": ask})
                if len(answers) < expected[0]:
                    await done.wait()
        finally:
            del self._asks[ask]
        if not answers:  # the broker could not be asked: this node's own at least
            answers[self._registry.node] = self.local()
        listed = [conn for conns in answers.values() for conn in conns]
        return sorted(listed, key=lambda c: (c["since"], c["id"]))

    def _wanted(self, payload: SignalPayload) -> None:
        answer = {
            "ask": payload["ask"],
            "node": self._registry.node,
            "connections": json.dumps(self.local()),
        }
        self._broker.signal(SignalKind.CONNECTIONS_LISTED, answer)

    def _listed(self, payload: SignalPayload) -> None:
        found = self._asks.get(payload.get("ask", ""))
        if found is None:
            return  # another node's ask, or one that gave up waiting
        answers, done, expected = found
        try:
            answers[payload["node"]] = json.loads(payload["connections"])
        except (KeyError, ValueError):
            log.warning("ignoring a malformed connections answer")
            return
        if len(answers) >= expected[0]:
            done.set()
