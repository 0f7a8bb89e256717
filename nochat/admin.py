"""What admins do, and what room owners and members do to their own: each action is a
store write, an audit entry, and the broker signal that makes every node apply it at
once (sessions.py closes sockets, moderation.py forgets caches and takes sockets out of
rooms). The routes (http_admin.py, http_account.py) only parse and answer.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from typing import TYPE_CHECKING, Any

import msgspec

from .errors import CloseCode, Forbidden, NotFound, ValidationError
from .store import (
    DELETED_BY_MODERATOR,
    Account,
    AccountFlag,
    Ack,
    AppendRequest,
    Room,
    Session,
    User,
    now_ms,
)

if TYPE_CHECKING:
    from .services import Services

log = logging.getLogger(__name__)

#: How long a password-reset link works.
RESET_TTL_S = 3600
#: Longest mute an admin may give (a year); shorter ones are the point.
MUTE_MAX_S = 365 * 24 * 3600
#: The audit log's actor for the command line (`nochat admin promote`).
CLI_ACTOR = "cli"


def short_id(session_id: str) -> str:
    """A session's id for display: names it among the user's sessions, never its token."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:12]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Admin:
    """Admin, owner and member actions over one app's services."""

    def __init__(self, services: Services) -> None:
        self.svc = services

    # ---- who may ----------------------------------------------------------------------

    async def require_admin(self, user: User) -> Account:
        """The caller's account if it is an admin's (read at every call: a demotion, even
        from the command line, takes effect at once); Forbidden otherwise."""
        account = await self.svc.store.account(user.id)
        if account is None or account.role != "admin":
            raise Forbidden("admins only")
        return account

    async def audit(self, actor: str, action: str, target: str, **detail: Any) -> None:
        encoded = msgspec.json.encode(detail).decode()
        await self.svc.store.add_audit(actor, action, target, encoded)
        log.info("admin action %s by %s on %s", action, actor, target)

    # ---- users ------------------------------------------------------------------------

    async def account(self, name: str) -> Account:
        account = await self.svc.store.account_by_name(name)
        if account is None:
            raise NotFound(f"no user {name!r}")
        return account

    async def user_json(self, account: Account) -> dict[str, Any]:
        svc = self.svc
        state = "offline"
        if svc.presence.connections_of(account.name) > 0:
            state = (await svc.status.of(User(account.id, account.name))).state
        until = account.muted_until
        return {
            "name": account.name,
            "role": account.role,
            "state": state,
            "last_seen": now_ms() if state != "offline" else account.last_seen,
            "created": account.created,
            "disabled": account.disabled_ms is not None,
            "banned": account.banned_ms is not None,
            "muted_until": until if until is not None and until > now_ms() else None,
            "sessions": account.sessions,
        }

    async def user_detail(self, name: str) -> dict[str, Any]:
        account = await self.account(name)
        sessions = await self.svc.store.user_sessions(account.id)
        listed = [
            {
                "id": short_id(s.id),
                "created": s.created,
                "last_used": s.last_used,
                "address": s.address,
            }
            for s in sessions
        ]
        return {**await self.user_json(account), "sessions_list": listed}

    async def _flag(
        self, actor: Account, name: str, action: str, flag: AccountFlag, value: int | None
    ) -> Account:
        target = await self.account(name)
        await self.svc.store.set_account_flag(target.id, flag, value)
        await self.audit(actor.name, action, target.name)
        return target

    async def shut(self, actor: Account, name: str, action: str) -> dict[str, Any]:
        """ban, disable or signout: the flag (not for signout), every session ended, every
        socket closed (4003 for a ban, else 4001) on every node."""
        target = await self.account(name)
        svc = self.svc
        if action == "ban":
            await svc.store.set_account_flag(target.id, "banned_ms", now_ms())
        elif action == "disable":
            await svc.store.set_account_flag(target.id, "disabled_ms", now_ms())
        ended = await svc.store.end_sessions(target.id)
        code = CloseCode.BANNED if action == "ban" else CloseCode.TOKEN_EXPIRED
        svc.connections.end_account(target.id, code)
        for session_id in ended:
            svc.connections.end_session(session_id)
        await self.audit(actor.name, action, target.name, sessions=len(ended))
        return await self._fresh(target)

    async def reopen(self, actor: Account, name: str, action: str) -> dict[str, Any]:
        """unban or enable."""
        flag: AccountFlag = "banned_ms" if action == "unban" else "disabled_ms"
        target = await self._flag(actor, name, action, flag, None)
        self.svc.connections.end_account(target.id, None)
        return await self._fresh(target)

    async def mute(self, actor: Account, name: str, seconds: int | None) -> dict[str, Any]:
        """Mute for `seconds` (None: unmute); every node forgets its cached mute state."""
        if seconds is not None and not 1 <= seconds <= MUTE_MAX_S:
            raise ValidationError(f"seconds must be 1 to {MUTE_MAX_S}")
        until = None if seconds is None else now_ms() + seconds * 1000
        action = "unmute" if seconds is None else "mute"
        target = await self.account(name)
        await self.svc.store.set_account_flag(target.id, "muted_until", until)
        self.svc.connections.end_account(target.id, None)
        detail = {} if seconds is None else {"seconds": seconds}
        await self.audit(actor.name, action, target.name, **detail)
        return await self._fresh(target)

    async def _fresh(self, account: Account) -> dict[str, Any]:
        found = await self.svc.store.account(account.id)
        return await self.user_json(found or account)

    async def reset_link(self, actor: Account, name: str) -> dict[str, Any]:
        target = await self.account(name)
        token = secrets.token_urlsafe(32)
        expires = now_ms() + RESET_TTL_S * 1000
        await self.svc.store.put_reset(target.id, token_hash(token), expires)
        await self.audit(actor.name, "reset_password", target.name)
        return {"link": f"/reset#{token}", "expires": expires}

    # ---- rooms and messages -----------------------------------------------------------

    async def room(self, name: str) -> Room:
        room = await self.svc.store.room(name)
        if room is None:
            raise NotFound(f"no room {name!r}")
        return room

    async def change_room(self, actor: Account, name: str, action: str) -> Room:
        """archive, unarchive, make_private or delete_room; every node forgets the room."""
        svc, room = self.svc, await self.room(name)
        if action in ("archive", "unarchive"):
            await svc.store.set_archived(room.id, action == "archive")
        elif action == "make_private":
            await svc.store.make_private(room.id)
        else:
            await svc.store.delete_room(room.id)
        svc.moderation.room_changed(room, gone=action == "delete_room")
        await self.audit(actor.name, action, room.name)
        return await svc.store.room(name) or room

    async def delete_message(
        self, actor: Account, room_name: str, msg_id: str, client_id: str | None
    ) -> Ack:
        """A moderator's delete: the chat model's delete event (the same scrub, fan-out and
        replay), marked `by: "moderator"`, in any room."""
        room = await self.room(room_name)
        cid = client_id or f"mod-{uuid.uuid4().hex}"
        user = User(actor.id, actor.name)
        request = AppendRequest(room, user, DELETED_BY_MODERATOR, cid, "delete", msg_id)
        ack = await self.svc.store.append(request)
        await self.audit(actor.name, "delete_message", f"{room.name}/{msg_id}")
        return ack

    # ---- connections ------------------------------------------------------------------

    async def disconnect(self, actor: Account, conn_id: str) -> None:
        self.svc.connections.disconnect(conn_id)
        await self.audit(actor.name, "disconnect", conn_id)

    # ---- room owners ------------------------------------------------------------------

    async def _owned(self, user: User, name: str) -> tuple[Room, str]:
        """A private room (not a DM) `user` owns or, as an admin, may manage; and who acts."""
        svc = self.svc
        account = await svc.store.account(user.id)
        is_admin = account is not None and account.role == "admin"
        room = await (self.room(name) if is_admin else svc.rooms.visible_room(user, name))
        if not room.private or room.dm:
            raise ValidationError("only private rooms have members to manage", code="not_private")
        if room.owner_id != user.id and not is_admin:
            raise Forbidden("only the room's owner (or an admin) manages its members")
        return room, user.name

    async def remove_member(self, user: User, room_name: str, member: str) -> Room:
        """`member` out of the room (their sockets get `left`, the room's others
        `member_removed`); the room, for the caller to list who is left."""
        svc = self.svc
        room, actor = await self._owned(user, room_name)
        target = await svc.store.user_by_name(member)
        if target is None or not await svc.store.is_member(room, target):
            raise NotFound(f"{member!r} is not a member")
        if target.id == room.owner_id:
            raise ValidationError("the owner cannot be removed: hand the room over first")
        await svc.store.remove_member(room.id, target.id)
        svc.moderation.member_removed(room, target)
        await self.audit(actor, "remove_member", room.name, user=target.name)
        return room

    async def hand_over(self, user: User, room_name: str, member: str) -> Room:
        svc = self.svc
        room, actor = await self._owned(user, room_name)
        target = await svc.store.user_by_name(member)
        if target is None or not await svc.store.is_member(room, target):
            raise ValidationError(f"{member!r} is not a member", code="not_member")
        await svc.store.set_owner(room.id, target.id)
        svc.moderation.owner_changed(room, target)
        await self.audit(actor, "hand_over", room.name, user=target.name)
        return await svc.store.room(room.name) or room

    # ---- members, for themselves -------------------------------------------------------

    async def change_password(self, user: User, session: Session, old: str, new: str) -> None:
        svc = self.svc
        if not await svc.auth.check_password(user, old):
            raise Forbidden("the old password is wrong", code="bad_credentials")
        await svc.store.set_password(user.id, await svc.auth.hash_password(new))
        for session_id in await svc.store.end_sessions(user.id, keep=session.id):
            svc.connections.end_session(session_id)

    async def delete_account(self, user: User, password: str) -> None:
        svc = self.svc
        if not await svc.auth.check_password(user, password):
            raise Forbidden("the password is wrong", code="bad_credentials")
        ended = await svc.store.delete_account(user.id)
        svc.connections.end_account(user.id, CloseCode.TOKEN_EXPIRED)
        for session_id in ended:
            svc.connections.end_session(session_id)
        await self.audit(user.name, "delete_account", user.name)

    async def reset_password(self, token: str, password: str) -> None:
        """Use a reset link: the new password set, every session of the user ended."""
        svc = self.svc
        user_id = await svc.store.take_reset(token_hash(token))
        if user_id is None:
            raise ValidationError(
                "this reset link is unknown, used or expired", code="invalid_token"
            )
        await svc.store.set_password(user_id, await svc.auth.hash_password(password))
        svc.connections.end_account(user_id, CloseCode.TOKEN_EXPIRED)
        for session_id in await svc.store.end_sessions(user_id):
            svc.connections.end_session(session_id)
