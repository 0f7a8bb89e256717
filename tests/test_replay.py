"""replay.catch_up: when a joining subscriber may go live."""

from __future__ import annotations

import trio

from nochat import replay
from nochat.hub import RoomCursor, Subscriber

from .support import STEP_S, Api, RunningServer


async def test_replay_goes_live_only_once_the_broker_knows_the_room_head(
    server: RunningServer,
) -> None:
    """A room that has just opened on this node: its head in the broker is unknown until
    the broker has read the store. Going live before that (as the store's own published
    head once allowed) risks a cursor behind where the broker starts delivering."""
    ann = await Api(server.http).signup("ann")
    for i in range(2):
        await ann.post("/api/rooms/general/messages", {"text": f"m{i}", "client_id": f"c{i}"})
    svc = server.services
    room = await svc.rooms.visible_room(await svc.store.user_by_id(1), "general")  # type: ignore[arg-type]
    send, receive = trio.open_memory_channel[str | bytes](16)
    sub = Subscriber("carl", send, inbox=receive)
    svc.hub.connect(sub)
    cursor = RoomCursor(seq=2)  # the store's head, as join reads it
    svc.hub.subscribe("general", sub, cursor)  # the room opens: its broker head is unknown
    assert svc.broker.head("general") is None
    with trio.fail_after(STEP_S):
        await replay.catch_up(svc, sub, "carl", room, cursor)
    head = svc.broker.head("general")
    assert cursor.live and head is not None and cursor.seq >= head == 2
    svc.hub.unsubscribe("general", sub)
    svc.hub.disconnect(sub)
