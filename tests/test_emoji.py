"""What a reaction may be (nochat/emoji.py): one emoji grapheme or a short `:name:`."""

from __future__ import annotations

import pytest

from nochat.emoji import is_emoji, require_emoji
from nochat.errors import ValidationError

ONE_EMOJI = [
    "👍",
    "👍🏽",  # skin tone
    "❤️",  # presentation selector
    "👨‍👩‍👧‍👦",  # ZWJ family
    "🏳️‍🌈",  # ZWJ with VS16
    "🇩🇪",  # flag: two regional indicators
    "1️⃣",  # keycap with VS16
    "#⃣",  # keycap without
    "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # Scotland's tag flag
]
NOT_ONE = [
    "",
    "a",
    "1",
    "👍👍",  # two
    " 👍",
    "👍 ",
    "\u200d",
    "👍\u200d",  # a ZWJ joining nothing
    "🇩",  # half a flag
    "🇩🇪🇫",
    "👍\n",
    "<b>",
    "👍" * 20,
]


@pytest.mark.parametrize("text", ONE_EMOJI)
def test_emoji_one_grapheme_is_accepted(text: str) -> None:
    assert is_emoji(text)
    require_emoji(text)


@pytest.mark.parametrize("text", NOT_ONE)
def test_emoji_anything_else_is_refused(text: str) -> None:
    assert not is_emoji(text)
    with pytest.raises(ValidationError) as refused:
        require_emoji(text)
    assert refused.value.code == "invalid_emoji"


@pytest.mark.parametrize("name", [":tada:", ":+1:", ":thumbs_up:", ":a-b:", ":" + "x" * 32 + ":"])
def test_emoji_short_names_are_accepted(name: str) -> None:
    require_emoji(name)


@pytest.mark.parametrize("name", ["::", ":Tada:", ":tada", "tada:", ":" + "x" * 33 + ":", ": x:"])
def test_emoji_bad_short_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError):
        require_emoji(name)
