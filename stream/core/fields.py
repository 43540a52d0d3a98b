"""Field readers of the event contracts (``stream.core.contracts``): one rule per kind of field.

Each reader returns the field's value as the features use it, or raises ``ContractError`` with a
reason that names the field and the rule, never the value (reasons are logged; a value may be a
card number or a forged log line). Apart from the contracts so that the record shapes and their
fast paths read in one place and the rules they share in another.
"""

from __future__ import annotations

import math
from typing import Literal, overload

from stream.core.logsafe import has_control
from stream.core.wire import ContractError

# Epoch milliseconds between 1973 and 2100: any epoch-*seconds* value up to the year 5000 is
# below 1e11, so a seconds-vs-milliseconds mistake is caught at the edge, not in the features.
TS_MIN_MS = 100_000_000_000
TS_MAX_MS = 4_102_444_800_000


@overload
def text(d: dict, key: str, *, max_len: int = ..., required: Literal[True] = ...) -> str: ...
@overload
def text(d: dict, key: str, *, max_len: int = ..., required: bool) -> str | None: ...


def text(d: dict, key: str, *, max_len: int = 64, required: bool = True) -> str | None:
    v = d.get(key)
    if v is None:
        if required:
            raise ContractError(f"missing field '{key}'")
        return None
    if not isinstance(v, str):
        raise ContractError(f"field '{key}' must be a string, got {type(v).__name__}")
    v = v.strip()
    if not v:
        raise ContractError(f"field '{key}' is empty")
    if len(v) > max_len:
        raise ContractError(f"field '{key}' longer than {max_len} characters")
    # printable ASCII has no control character: the pattern search only for the other strings
    if not (v.isascii() and v.isprintable()) and has_control(v):
        raise ContractError(f"field '{key}' contains control characters")
    return v


def code(d: dict, key: str, size: int, standard: str) -> str:
    """An ISO code: exactly ``size`` ASCII letters (``str.isalpha`` alone lets 'ÉUR' through)."""
    v = text(d, key, max_len=size).upper()
    if len(v) != size or not (v.isascii() and v.isalpha()):
        raise ContractError(f"field '{key}' is not an {standard} code")
    return v


@overload
def number(d: dict, key: str, *, required: Literal[True] = ..., hi: float | None = ...) -> float: ...
@overload
def number(d: dict, key: str, *, required: bool, hi: float | None = ...) -> float | None: ...


def number(d: dict, key: str, *, required: bool = True, hi: float | None = None) -> float | None:
    v = d.get(key)
    if v is None:
        if required:
            raise ContractError(f"missing field '{key}'")
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ContractError(f"field '{key}' must be a number, got {type(v).__name__}")
    v = float(v)
    if not math.isfinite(v):
        raise ContractError(f"field '{key}' is not finite")
    if hi is not None and abs(v) > hi:
        raise ContractError(f"field '{key}' out of range (at most {hi:g})")
    return v


def timestamp(d: dict) -> int:
    v = number(d, "ts")
    ts = int(v)
    if not (TS_MIN_MS <= ts <= TS_MAX_MS):
        hint = " (looks like epoch seconds)" if 0 < ts < TS_MIN_MS else ""
        raise ContractError(f"field 'ts' must be epoch milliseconds (1973..2100){hint}")
    return ts


def check_clock(ts: int, now_ms: int, tolerance_ms: int) -> None:
    """Refuse an event dated further ahead of the worker's clock than the tolerance: one
    far-future tick would otherwise make every later tick of its symbol look out of order."""
    if ts > now_ms + tolerance_ms:
        raise ContractError(
            f"field 'ts' is {(ts - now_ms) / 1000:.0f} s ahead of the worker's clock "
            f"(tolerance {tolerance_ms / 1000:g} s, FINSTREAM_MAX_FUTURE_SKEW_S)"
        )


def plain(v: object, max_len: int = 64) -> bool:
    """A string ``text`` returns as it is: printable ASCII (so no control character, and no
    whitespace but spaces), none at either end, 1 to ``max_len`` characters."""
    return type(v) is str and 0 < len(v) <= max_len and v.isascii() and v.isprintable() and v[0] != " " != v[-1]
