"""What a reaction may be: one emoji (a single grapheme) or a short `:name:`.

Python's `re` has no grapheme clusters (`\\X`), so one emoji is recognised by its
structure, from the Unicode emoji sequences (UTS #51): a flag (two regional
indicators), a keycap (`0`-`9`, `#` or `*`, optional U+FE0F, U+20E3), or one or more
emoji elements joined by ZWJ (U+200D), each a pictograph with an optional presentation
selector (U+FE0F), skin tone (U+1F3FB-U+1F3FF) and tag sequence (U+E0020-U+E007F,
ended by U+E007F). Text, spaces, controls and two emoji side by side are refused.
"""

from __future__ import annotations

import re
from typing import Final

from .errors import ValidationError

#: `:thumbsup:`-style names: lower-case ASCII, digits, `_`, `+`, `-`; 1-32 characters.
NAME_RE: Final = re.compile(r":[a-z0-9_+-]{1,32}:")
#: Longest emoji sequence accepted, in code points (family ZWJ sequences are ~11).
MAX_CODE_POINTS: Final = 16

_PICTOGRAPH_RANGES: Final = (
    (0x00A9, 0x00A9),
    (0x00AE, 0x00AE),
    (0x203C, 0x203C),
    (0x2049, 0x2049),
    (0x2122, 0x2122),
    (0x2139, 0x2139),
    (0x2194, 0x21AA),
    (0x231A, 0x23FF),
    (0x24C2, 0x24C2),
    (0x25AA, 0x25FE),
    (0x2600, 0x27BF),
    (0x2934, 0x2935),
    (0x2B05, 0x2B55),
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0x3297, 0x3299),
    (0x1F000, 0x1F1E5),
    (0x1F200, 0x1F3FA),
    (0x1F400, 0x1FAFF),
)
_REGIONAL = (0x1F1E6, 0x1F1FF)
_SKIN = (0x1F3FB, 0x1F3FF)
_VS16, _ZWJ, _KEYCAP, _TAG_END = 0xFE0F, 0x200D, 0x20E3, 0xE007F


def _pictograph(cp: int) -> bool:
    return any(low <= cp <= high for low, high in _PICTOGRAPH_RANGES)


def _element(cps: list[int]) -> bool:
    """One emoji element: a pictograph, then optional VS16, skin tone, tag sequence."""
    if not cps or not _pictograph(cps[0]):
        return False
    rest = cps[1:]
    if rest and rest[0] == _VS16:
        rest = rest[1:]
    if rest and _SKIN[0] <= rest[0] <= _SKIN[1]:
        rest = rest[1:]
    # What is left may only be a tag sequence (subdivision flags): tags, then cancel.
    return not rest or (rest[-1] == _TAG_END and all(0xE0020 <= cp <= 0xE007E for cp in rest[:-1]))


def is_emoji(text: str) -> bool:
    """True when `text` is exactly one emoji grapheme."""
    cps = [ord(c) for c in text]
    if not 0 < len(cps) <= MAX_CODE_POINTS:
        return False
    if len(cps) == 2 and all(_REGIONAL[0] <= cp <= _REGIONAL[1] for cp in cps):
        return True
    if cps[-1] == _KEYCAP and text[0] in "0123456789#*" and len(cps) in (2, 3):
        return len(cps) == 2 or cps[1] == _VS16
    parts: list[list[int]] = [[]]
    for cp in cps:
        if cp == _ZWJ:
            parts.append([])
        else:
            parts[-1].append(cp)
    return all(_element(part) for part in parts)


def require_emoji(text: str) -> None:
    """Raise ValidationError `invalid_emoji` unless `text` may be a reaction."""
    if not (NAME_RE.fullmatch(text) or is_emoji(text)):
        raise ValidationError(
            "emoji must be one emoji or a :name: of 1-32 of a-z 0-9 _ + -", code="invalid_emoji"
        )
