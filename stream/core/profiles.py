"""Per-user product profile: what the customer holds, what they did lately, and what we know of them.

The profile lives in Redis behind the recommend job's fence (one snapshot per user); everything
the recommender feeds the model is derived from it here, so the stream and the training code
(``training.recommend_*``) build the same features from the same event sequence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stream.core.products import CUSTOMER_ATTRIBUTES, PRODUCT_IDS, PRODUCT_INDEX

RECENT_CAP = 10  # the last N interest events kept per user (the model's sequence length)
HOLDING_ACTIONS = frozenset({"buy", "sell"})


@dataclass(slots=True)
class UserProfile:
    """A value: nothing changes a profile (or its lists and dict) in place, so a new profile shares
    what an event leaves unchanged with the one before, and profiles unpacked from snapshots share
    their entry and holdings lists with the codec's memos (less to allocate and to collect per event)."""

    holdings: list[str] = field(default_factory=list)  # product ids, sorted
    recent: list[list[str]] = field(default_factory=list)  # [product_id, action, note], oldest first
    attributes: dict[str, float] = field(default_factory=dict)  # live socio-demographics, when a record carried them
    # ``recent`` as its snapshot tokens (``pack_snapshot``: "3v 17c 3s:fuel"), when known: carried from
    # the unpacked snapshot and along by ``apply_event`` (one token per event), so packing each new
    # profile does not tokenise its ten events again. A cache: not compared, None = work it out.
    packed_recent: str | None = field(default=None, compare=False, repr=False)
    # ``holdings_mask(holdings)``, when known (a cache like ``packed_recent``); known means ``holdings``
    # is sorted and free of repeats, so an interest event can keep the list as it is.
    mask: int | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict:
        return {"holdings": self.holdings, "recent": self.recent, "attributes": self.attributes}

    @classmethod
    def from_dict(cls, d: dict | None) -> UserProfile:
        if not d:
            return cls()
        # Snapshots written before actions were kept hold bare product ids: read them as views.
        recent = [[r, "view", ""] if isinstance(r, str) else list(r) for r in d["recent"]]
        return cls(list(d["holdings"]), recent, dict(d.get("attributes") or {}))


def apply_event(
    p: UserProfile, product_id: str, action: str, note: str = "", attributes: dict[str, float] | None = None
) -> UserProfile:
    """A buy adds a holding, a sell removes it; every other action (view, click, apply, spend) is an
    interest event appended to ``recent`` (repeats count again: they are stronger interest).
    ``note`` says where a derived event came from (the merchant category of a card spend).
    The new profile shares what the event leaves unchanged with the old one (its ``recent`` entries,
    and holdings and attributes when the event does not change them: profiles are values)."""
    recent, packed, mask = p.recent, p.packed_recent, p.mask
    if action == "buy" or action == "sell":
        held = set(p.holdings)
        bit = PRODUCT_INDEX.get(product_id)
        if action == "buy":
            held.add(product_id)
            mask = None if mask is None or bit is None else mask | 1 << bit
        else:
            held.discard(product_id)
            mask = None if mask is None or bit is None else mask & ~(1 << bit)
        holdings = sorted(held)
    else:
        # a known mask means the holdings are sorted and unique: what sorted(set(...)) would give
        holdings = p.holdings if mask is not None else sorted(set(p.holdings))
        if note and len(note.split()) != 1:  # a snapshot token is one word: "gift shop" -> "gift_shop"
            note = "_".join(note.split())  # (a reason says it as "gift shop" again: ``spend_words``)
        entry = [product_id, action, note]
        n = len(recent)
        recent = recent[n + 1 - RECENT_CAP :] + [entry] if n >= RECENT_CAP else recent + [entry]
        packed = _appended(packed, entry, n + 1 - len(recent))
    attrs = {**p.attributes, **attributes} if attributes else p.attributes
    return UserProfile(holdings, recent, attrs, packed, mask)


_ATTR_INDEX = {a: i for i, a in enumerate(CUSTOMER_ATTRIBUTES)}


def attribute_vector(known: dict[str, float], means) -> np.ndarray:
    """The model's ``attributes`` row: the user's live values where known, the training mean elsewhere."""
    row = np.array(means, dtype=np.float32)
    for name, v in known.items():
        row[_ATTR_INDEX[name]] = v
    return row


def attribute_rows(known: list[dict[str, float]], means) -> np.ndarray:
    """``attribute_vector`` of each user of a batch as one float32 matrix."""
    rows = np.tile(np.asarray(means, dtype=np.float32), (len(known), 1))
    for i, attrs in enumerate(known):
        for name, v in attrs.items():
            rows[i, _ATTR_INDEX[name]] = v
    return rows


# --- snapshots ----------------------------------------------------------------------------------
# The fence keeps one output snapshot per applied offset (up to fencing.SNAPSHOTS_KEPT per user), so
# the profile a recommendation was computed from (and the profile state) is stored compactly: [holdings bitmask, "3v 17c
# 3s:fuel" (product index, action code, spend note), attributes if any]. Roughly 40-80 bytes.
_CODE = {"view": "v", "click": "c", "apply": "a", "spend": "s"}
_ACTION = {c: a for a, c in _CODE.items()}


_TOKEN: dict[tuple[str, str, str], str] = {}  # (product, action, note) -> "3v" / "3s:fuel" (few distinct)
_ENTRY: dict[str, list[str]] = {}  # the inverse (entries shared by the profiles unpacked: never changed)
_HELD: dict[int, list[str]] = {}  # holdings bitmask -> product ids, sorted (shared likewise)
_MEMO_MAX = 65_536  # bounds the memos against a feed of ever new spend notes


def _token(r) -> str:
    key = (r[0], r[1], r[2] if len(r) > 2 else "")
    tok = _TOKEN.get(key)
    if tok is None:
        tok = f"{PRODUCT_INDEX[key[0]]}{_CODE[key[1]]}" + (f":{key[2]}" if key[2] else "")
        if len(_TOKEN) < _MEMO_MAX:
            _TOKEN[key] = tok
    return tok


def _entry(tok: str) -> list[str]:
    e = _ENTRY.get(tok)
    if e is None:
        head, _, note = tok.partition(":")
        e = [PRODUCT_IDS[int(head[:-1])], _ACTION[head[-1]], note]
        if len(_ENTRY) < _MEMO_MAX:
            _ENTRY[tok] = e
    return e


def holdings_mask(holdings) -> int:
    """Bit i set = the customer holds ``PRODUCT_IDS[i]``."""
    mask = 0
    for h in holdings:
        mask |= 1 << PRODUCT_INDEX[h]
    return mask


def mask_of(p: UserProfile) -> int:
    """``holdings_mask`` of a profile's holdings, from its cache when known."""
    return p.mask if p.mask is not None else holdings_mask(p.holdings)


_ALL_HELD = 1 << len(PRODUCT_IDS)  # masks below this are what holdings_mask can give


def _held(mask: int) -> list[str]:
    held = _HELD.get(mask)
    if held is None:
        held = sorted(p for i, p in enumerate(PRODUCT_IDS) if mask >> i & 1)
        if len(_HELD) < _MEMO_MAX:
            _HELD[mask] = held
    return held


def _appended(packed: str | None, entry: list[str], dropped: int) -> str | None:
    """``packed`` (the tokens of a ``recent``) with ``entry`` appended and its first ``dropped``
    tokens gone, or None when that cannot be done exactly: unknown before, or a token that is not
    one word (a note with a space, which the string could not delimit), or an entry with no token."""
    if packed is None:
        return None
    try:
        tok = _token(entry)
    except (KeyError, IndexError):  # not a catalogue product or interest action (training data)
        return None
    if len(tok.split()) != 1:
        return None
    packed = f"{packed} {tok}" if packed else tok
    return packed.split(" ", dropped)[dropped] if dropped > 0 else packed


def pack_snapshot(p: UserProfile) -> list:
    rec = p.packed_recent
    if rec is None:
        rec = " ".join(map(_token, p.recent))
    mask = mask_of(p)
    return [mask, rec, p.attributes] if p.attributes else [mask, rec]


def unpack_snapshot(x) -> UserProfile:
    """Inverse of ``pack_snapshot``; also reads the older forms (a holdings list, a profile dict) and
    ``None`` (a user seen for the first time). The profile state itself is stored in this form too."""
    if x is None:
        return UserProfile(packed_recent="", mask=0)  # no events: their tokens (and holdings) are known
    if isinstance(x, dict):
        return UserProfile.from_dict(x)
    if not x or isinstance(x[0], str):
        return UserProfile(list(x), [], {})
    toks = x[1].split()
    packed = x[1] if " ".join(toks) == x[1] else None  # as pack_snapshot writes it: one space between tokens
    try:
        get = _ENTRY.get
        recent = [get(t) or _entry(t) for t in toks]
    except (ValueError, KeyError, IndexError):  # written before notes were one word: "3s:gift shop"
        recent, packed = _spaced_entries(toks), None
    mask = x[0]
    known = mask if type(mask) is int and 0 <= mask < _ALL_HELD else None  # else holdings_mask says
    return UserProfile(_held(mask), recent, dict(x[2]) if len(x) > 2 else {}, packed, known)


def _spaced_entries(toks: list[str]) -> list[list[str]]:
    """Entries of tokens whose notes held spaces (stored before ``apply_event`` made notes one
    word): a word that is not a token continues the note before it."""
    out: list[list[str]] = []
    for t in toks:
        try:
            out.append(list(_entry(t)))
        except (ValueError, KeyError, IndexError):
            if not out:
                raise
            out[-1][2] += " " + t
    return out
