"""The password policy, after NIST SP 800-63B (5.1.1.2): long enough, not a known or guessable one, and no
composition rules (no "a digit and a capital letter": they make passwords harder to remember, not to guess)."""

import gzip
from collections.abc import Iterable
from functools import cache
from importlib.resources import files

MIN_LENGTH = 12
MAX_LENGTH = 200  # long passphrases are welcome; this only bounds the hashing work a request may ask for
MIN_DISTINCT = 5  # "aaaaaaaaaaaa", "abababababab": repetitive, whatever their length
CONTEXT_MIN = 4  # a context word shorter than this (an e-mail's "li") is no hint to a guesser


@cache
def _common() -> frozenset[str]:
    with gzip.open(files(__package__) / "data" / "common-passwords.txt.gz", "rt", encoding="utf-8") as lines:
        return frozenset(line.strip().lower() for line in lines if line.strip())


def _sequential(password: str) -> bool:
    """Every character one code point above (or below) the one before it: "abcdefghijkl", "987654321098"."""
    steps = {ord(b) - ord(a) for a, b in zip(password, password[1:], strict=False)}
    return steps in ({1}, {-1}) or steps <= {1, -9} or steps <= {-1, 9}  # digits wrap: ...7890123


# Why a password may not be used, by code (the API's error `type`): a message for the person choosing it.
WEAKNESSES = {
    "password_too_short": (
        "must be at least {min_length} characters long (a passphrase of a few words is easy to remember)"
    ),
    "password_too_long": "must be at most {max_length} characters long",
    "password_common": "is one of the most common passwords, which are tried first: choose another",
    "password_repetitive": "is too repetitive or sequential to be hard to guess",
    "password_personal": "must not contain your e-mail address or name",
}


def weakness_code(password: str, *, context: Iterable[str] = ()) -> tuple[str, dict[str, int]] | None:
    """Why `password` may not be used, as a code of WEAKNESSES and the values its message names; None if it may.

    `context`: words a guesser would try first for this account (the e-mail address, its parts).
    """
    if len(password) < MIN_LENGTH:
        return "password_too_short", {"min_length": MIN_LENGTH}
    if len(password) > MAX_LENGTH:
        return "password_too_long", {"max_length": MAX_LENGTH}
    folded = password.lower()
    if folded in _common():
        return "password_common", {}
    if len(set(folded)) < MIN_DISTINCT or _sequential(folded):
        return "password_repetitive", {}
    for word in context:
        if len(word) >= CONTEXT_MIN and word.lower() in folded:
            return "password_personal", {}
    return None


def weakness(password: str, *, context: Iterable[str] = ()) -> str | None:
    """Why `password` may not be used (a message for the person choosing it), or None if it may."""
    found = weakness_code(password, context=context)
    return WEAKNESSES[found[0]].format(**found[1]) if found else None


def email_words(email: str) -> list[str]:
    """The parts of an e-mail address a guesser would try: the whole, its name, the words of the name."""
    name = email.split("@", 1)[0]
    return [email, name, *name.replace("-", ".").replace("_", ".").split(".")]
