"""Name folding for search and matching: case, accents and apostrophes do not matter; scripts are kept."""

import re
import unicodedata

_APOSTROPHES = re.compile(r"[\u0027\u2018\u2019\u02bc\u02bb\u0060\u00b4]")
_SPACES = re.compile(r"[\s\-‐–]+")


def fold(text: str) -> str:
    """'Xi’an' -> 'xian', 'Düsseldorf' -> 'dusseldorf', '西安' -> '西安'."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", _APOSTROPHES.sub("", stripped)).casefold().strip()


def search_text(*names: str | None, alternates: list[str] = ()) -> str:
    """Every distinct folded name, one per line (searched with a substring match)."""
    folded = dict.fromkeys(fold(n) for n in (*names, *alternates) if n)
    return "\n".join(folded)
