"""Text rules no regex states: whether message text shows anything, and name look-alikes."""

from __future__ import annotations

import unicodedata
from typing import Final

#: Categories that draw nothing on their own: controls, format characters (zero-width
#: space and joiners U+200B..U+200D, marks U+200E/U+200F, word joiner U+2060.., BOM
#: U+FEFF, tags), every kind of space and separator, and combining marks with no base.
INVISIBLE_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Me", "Cs"})

#: Characters Unicode files as letters or symbols that nevertheless draw nothing: the
#: Hangul fillers (U+115F, U+1160, U+3164, U+FFA0) and the braille blank (U+2800).
BLANK_GLYPHS: Final = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def visible(text: str) -> bool:
    """True when `text` has at least one character that shows (stops at the first one)."""
    category = unicodedata.category
    return any(ch not in BLANK_GLYPHS and category(ch) not in INVISIBLE_CATEGORIES for ch in text)


#: Unicode's confusables.txt (UTS #39) entries among the characters a name may hold,
#: `[A-Za-z0-9_-]`: 0 → O, 1 → l, I → l, m → rn. Names are unique case-insensitively, so
#: the skeleton folds case first; I then folds to i, and i must join l (else "ALICE" and
#: "aIice" would have different skeletons although both clash with "alice"). w → vv is
#: NoChat's own addition (two v's pass for a w in most fonts; confusables.txt lacks it).
#: The map is idempotent: no output character is itself mapped.
_SKELETON: Final = str.maketrans({"0": "o", "1": "l", "i": "l", "m": "rn", "w": "vv"})


def name_skeleton(name: str) -> str:
    """The form two names share when they look alike: `aIice`, `ALICE`, `a1ice` → `allce`."""
    return name.lower().translate(_SKELETON)
