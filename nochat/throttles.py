"""The throttles every path shares, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from .limits import EventWindow, FailureThrottle, KeyedSlots, LoginThrottle, TypingGate, UserBuckets
from .settings import Settings

#: The window NOCHAT_SIGNUP_RATE_PER_H counts sign-ups in.
SIGNUP_WINDOW_S = 3600.0
#: The window NOCHAT_ROOM_CREATIONS_PER_HOUR counts in.
ROOM_CREATION_WINDOW_S = 3600.0
#: In a room of more than `presence_batch_above` subscribers, most `typing` events that go
#: out per typing interval (each costs one delivery per socket in the room).
ROOM_TYPING_MAX = 10


@dataclass(frozen=True, eq=False)
class Throttles:
    """All of them count on this node only (docs/SECURITY.md says so for each)."""

    login: LoginThrottle
    #: Sign-ups per client address per hour (every attempt counts, in flight ones too).
    signup: FailureThrottle
    #: REST sends of each user share one bucket (a socket's sends have their own).
    rest_sends: UserBuckets
    room_creations: EventWindow
    #: Per user: how many joins may replay missed messages at once.
    replays: KeyedSlots
    typing: TypingGate

    @classmethod
    def from_settings(cls, settings: Settings) -> Throttles:
        return cls(
            login=LoginThrottle(
                settings.login_failures,
                settings.login_name_failures,
                settings.login_address_failures,
                settings.login_window_s,
            ),
            signup=FailureThrottle(settings.signup_rate_per_h, SIGNUP_WINDOW_S),
            rest_sends=UserBuckets(settings.send_rate_per_s, settings.send_burst),
            room_creations=EventWindow(settings.room_creations_per_hour, ROOM_CREATION_WINDOW_S),
            replays=KeyedSlots(settings.replays_per_user),
            typing=TypingGate(
                settings.typing_interval_s, ROOM_TYPING_MAX, settings.presence_batch_above
            ),
        )
