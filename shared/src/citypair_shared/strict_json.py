"""Strict JSON: what `json.loads` lets through and no request here may carry.

- a repeated key (`{"role": "observer", "role": "admin"}`): RFC 8259 leaves its meaning open and `json.loads`
  keeps the last, so a check and a write could each read a different one;
- `NaN`, `Infinity` and numbers beyond a float (`1e400`): not JSON, or not a number anything here can keep;
- nesting deeper than `MAX_DEPTH`: 10,000 `[` raise RecursionError (a 500), and no body here nests past 6;
- objects of more than `MAX_KEYS` keys: no model here has 50 fields, and 100,000 unknown keys cost seconds of
  validation errors (one each) before anything could refuse them;
- U+0000 (PostgreSQL cannot store it) and lone surrogates (`"\\ud800"`: no UTF-8 for it, so no database either).

`reject_bad_json` checks every JSON body a route has FastAPI parse, before the route runs (every service app
depends on it, `build_app`). Routes that read their body raw (imports) parse it with `loads` or `array_items`,
which apply the same rules.
"""

import asyncio
import json
import math
import re
from collections import deque
from collections.abc import Iterator
from typing import Any

from fastapi import Request, params
from fastapi.exceptions import RequestValidationError

MAX_DEPTH = 32
MAX_KEYS = 1_000
NUL = "\x00"
# Bodies larger than this are checked in a worker thread: a 2 MB one takes ~0.1 s, which others should not wait for.
CHECKED_INLINE_UP_TO = 64 * 1024


class BadJson(ValueError):
    """Why a JSON text is refused: `errors` in RequestValidationError's shape (`loc`, `msg`, `type`)."""

    def __init__(self, errors: list[dict]):
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in errors))
        self.errors = errors

    def __reduce__(self):  # raised in the bulk worker process, answered in the service's
        return type(self), (self.errors,)

    def under(self, *prefix) -> "BadJson":
        """The same errors, located under `prefix` (e.g. the row of an import)."""
        return BadJson([{**e, "loc": (*prefix, *e["loc"])} for e in self.errors])


def _error(loc: tuple, kind: str, message: str) -> dict:
    # A key may be the trouble itself (a lone surrogate): its location must still be writable as UTF-8.
    printable = tuple(p.encode("utf-8", "backslashreplace").decode() if isinstance(p, str) else p for p in loc)
    return {"loc": printable, "type": kind, "msg": message}


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    if len(pairs) > MAX_KEYS:
        raise BadJson([_error((), "json_keys", f"an object has more than {MAX_KEYS:,} keys")])
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        repeated = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise BadJson([_error((repeated,), "json_duplicate_key", f"the key {repeated!r} appears more than once")])
    return found


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadJson([_error((), "json_number", f"{text} is beyond the range of a number")])
    return value


def _no_constant(name: str):
    raise BadJson([_error((), "json_number", f"{name} is not JSON")])


_decoder = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_float=_finite, parse_constant=_no_constant)
_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _decode(text: str, position: int) -> tuple[Any, int]:
    """One JSON value at `position`: (value, where it ends). Raises BadJson for anything refused."""
    try:
        return _decoder.raw_decode(text, position)
    except RecursionError:
        raise BadJson([_error((), "json_depth", f"nested more than {MAX_DEPTH} levels deep")]) from None
    except json.JSONDecodeError as exc:
        raise BadJson([_error((), "json_invalid", f"not JSON: {exc}")]) from None
    except BadJson:
        raise
    except ValueError:  # int() refuses a literal of more than 4,300 digits
        raise BadJson([_error((), "json_number", "a number has too many digits")]) from None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text_error(loc: tuple, text: str) -> dict | None:
    if NUL in text:
        return _error(loc, "string_nul", "must not contain the NUL character (U+0000)")
    if not text.isascii() and not _encodable(text):
        return _error(loc, "string_surrogate", "must not contain a lone surrogate (\\ud800–\\udfff)")
    return None


def problems(value: Any, at: tuple = ()) -> list[dict]:
    """What `value` (parsed JSON, found at `at` in its document) holds that is refused: nesting past MAX_DEPTH,
    U+0000, lone surrogates.

    Breadth first and without recursion, so errors come in document order and any depth is safe to walk.
    """
    found = []
    queue = deque([(at, None, value)])
    while queue:
        loc, key, item = queue.popleft()
        if isinstance(key, str) and (error := _text_error(loc, key)):
            found.append(error)
        elif isinstance(item, str):
            if error := _text_error(loc, item):
                found.append(error)
        elif isinstance(item, dict | list):
            if len(loc) >= MAX_DEPTH:
                found.append(_error(loc, "json_depth", f"nested more than {MAX_DEPTH} levels deep"))
                continue
            for child_key, child in item.items() if isinstance(item, dict) else enumerate(item):
                queue.append(((*loc, child_key), child_key, child))
    return found


def _deeper_than_allowed(value: Any, depth: int) -> bool:
    """The quick form of the depth check (no locations): most bodies pass it, and only failures are walked again."""
    stack = [(value, depth)]
    while stack:
        item, depth = stack.pop()
        if depth >= MAX_DEPTH:
            return True
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


# U+0000 and surrogates arrive only escaped (raw, the one is not JSON and the other not UTF-8).
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def _check(value: Any, text: str, at: tuple = ()) -> None:
    """Raise BadJson if `value`, parsed from `text` and found at `at`, breaks a rule; the text tells which walks
    can be skipped."""
    nested = isinstance(value, dict | list) and text.count("[") + text.count("{") > MAX_DEPTH - len(at)
    suspect = (nested and _deeper_than_allowed(value, len(at))) or _SUSPECT_ESCAPE.search(text)
    if suspect and (found := problems(value, at)):
        raise BadJson(found)


def loads(data: bytes | str) -> Any:
    """`json.loads` by the rules above: raises BadJson (with every error found) for anything refused."""
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise BadJson([_error((), "json_invalid", "not UTF-8")]) from None
    value, end = _decode(text, _WHITESPACE.match(text).end())
    if _WHITESPACE.match(text, end).end() != len(text):
        raise BadJson([_error((), "json_invalid", f"not JSON: extra data at character {end}")])
    _check(value, text)
    return value


def array_items(text: str, *, under: str) -> Iterator[tuple[tuple, Any]]:
    """The items of a JSON array, one at a time, each checked as `loads` would: (location, item).

    The text is a top-level array, or an object with the array under the key `under` (its other keys are
    read and skipped). Only one item is in memory at a time. Raises BadJson when the text is refused,
    naming where (e.g. `(41, "name")` or `("cities", 41, "name")`); ValueError if the array is missing.
    """
    position = _skip(text, 0)
    if text.startswith("[", position):
        end = yield from _items(text, position, ())
    elif text.startswith("{", position):
        end = yield from _items_under(text, position, under)
    else:
        raise ValueError(f"not an array (nor an object with {under!r})")
    if _skip(text, end) != len(text):
        raise BadJson([_error((), "json_invalid", f"not JSON: extra data at character {end}")])


def _skip(text: str, position: int) -> int:
    return _WHITESPACE.match(text, position).end()


def _expect(text: str, position: int, char: str) -> int:
    if not text.startswith(char, position):
        raise BadJson([_error((), "json_invalid", f"not JSON: expected {char!r} at character {position}")])
    return _skip(text, position + 1)


def _items(text: str, position: int, prefix: tuple) -> Iterator[tuple[tuple, Any]]:
    """Yields each item of the array that opens at `position`; returns where the array ends."""
    position = _skip(text, position + 1)
    if text.startswith("]", position):
        return position + 1
    index = 0
    while True:
        loc, start = (*prefix, index), position
        try:
            item, position = _decode(text, position)
        except BadJson as exc:
            raise exc.under(*loc) from None
        _check(item, text[start:position], loc)
        yield loc, item
        position = _skip(text, position)
        if text.startswith("]", position):
            return position + 1
        position = _expect(text, position, ",")
        index += 1


def _items_under(text: str, position: int, under: str) -> Iterator[tuple[tuple, Any]]:
    """Like `_items` for the array under the key `under` of the object that opens at `position`."""
    position = _skip(text, position + 1)
    keys: set[str] = set()
    found_array = False
    while not text.startswith("}", position):
        if keys:
            position = _expect(text, position, ",")
        key, position = _decode(text, position)
        if not isinstance(key, str):
            raise BadJson([_error((), "json_invalid", f"not JSON: expected a key at character {position}")])
        if key in keys:
            raise BadJson([_error((key,), "json_duplicate_key", f"the key {key!r} appears more than once")])
        if len(keys) == MAX_KEYS:
            raise BadJson([_error((), "json_keys", f"an object has more than {MAX_KEYS:,} keys")])
        keys.add(key)
        position = _expect(text, _skip(text, position), ":")
        if key == under and text.startswith("[", position):
            position = yield from _items(text, position, (under,))
            found_array = True
        else:
            try:
                _, position = _decode(text, position)
            except BadJson as exc:
                raise exc.under(key) from None
        position = _skip(text, position)
    if not found_array:
        raise ValueError(f"not an array (nor an object with {under!r})")
    return position + 1


def _parsed_by_fastapi(request: Request) -> bool:
    """Whether FastAPI parses this request's body as JSON for its route (as FastAPI decides it)."""
    body_field = getattr(request.scope.get("route"), "body_field", None)
    if body_field is None or isinstance(body_field.field_info, params.Form):
        return False  # no body, a form, or a route that reads the raw body (imports check theirs themselves)
    content_type = request.headers.get("content-type")
    if not content_type:
        return True  # JSON unless the app has `strict_content_type` (then it is refused anyway: no harm)
    maintype, _, subtype = content_type.split(";")[0].strip().lower().partition("/")
    return maintype == "application" and (subtype == "json" or subtype.endswith("+json"))


async def reject_bad_json(request: Request) -> None:
    """A dependency: a JSON body FastAPI parses for the route must be strict JSON (else 422 naming where).

    FastAPI has parsed it already (a syntax error, or nesting past the interpreter's own limit, is answered
    there: 422 or 400); this parses it once more by the rules above, before any route code runs.
    """
    if not _parsed_by_fastapi(request):
        return
    body = await request.body()
    if not body:
        return
    try:
        if len(body) <= CHECKED_INLINE_UP_TO:
            loads(body)
        else:
            await asyncio.to_thread(loads, body)
    except BadJson as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors]) from None
