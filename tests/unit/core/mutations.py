"""Mutated records for the contracts' fast paths (``stream.core.contracts``): each parser reads the
usual record directly and must give what its field readers give, the same value or the same
refusal reason, so the tests compare both on records changed at random from a usual one."""

from __future__ import annotations

import random

import orjson

from stream.core.contracts import ContractError


def outcome(parse, d):
    """What ``parse`` makes of ``d``: its value, or ("refused", the reason)."""
    try:
        return parse(d)
    except ContractError as exc:
        return ("refused", str(exc))


def mutate(d: dict, rnd: random.Random, fields: list[str], values: list) -> dict:
    """``d`` with up to three fields dropped or set to one of ``values`` (as JSON gives it back)
    or to a random float."""
    for _ in range(rnd.choice([0, 0, 1, 1, 2, 3])):
        f = rnd.choice(fields)
        if rnd.random() < 0.2:
            d.pop(f, None)
        else:
            d[f] = orjson.loads(orjson.dumps(rnd.choice(values))) if rnd.random() < 0.9 else rnd.random()
    return d
