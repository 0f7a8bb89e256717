"""Edits, deletes and reactions as store appends: the one place both the socket and REST
turn a change into an `AppendRequest` (the rules that need the log are the store's,
store/changes.py; what the frame alone decides is checked here)."""

from __future__ import annotations

from .emoji import require_emoji
from .protocol import Change, Delete, Edit, require_text
from .store import AppendRequest, Room, User, reaction_payload


def change_request(room: Room, user: User, change: Change, max_text_chars: int) -> AppendRequest:
    """The append a change frame asks for; ValidationError (`empty_text`, `text_too_long`,
    `invalid_emoji`) when the frame's own content is not acceptable."""
    if isinstance(change, Edit):
        require_text(change.text, max_text_chars)
        return AppendRequest(room, user, change.text, change.client_id, "edit", change.id)
    if isinstance(change, Delete):
        return AppendRequest(room, user, "", change.client_id, "delete", change.id)
    require_emoji(change.emoji)
    payload = reaction_payload(change.emoji, change.on)
    return AppendRequest(room, user, payload, change.client_id, "reaction", change.id)
