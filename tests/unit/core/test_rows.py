"""Feature rows as a state stores them (``stream.core.rows``): what the model reads is unchanged."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest

from stream.core.rows import pack_row, rows_matrix


def test_a_packed_row_reads_back_as_the_float32_row_the_model_read_before():
    rng = np.random.default_rng(5)
    rows = [list(rng.normal(0, 10.0 ** rng.integers(-30, 30), size=72)) for _ in range(50)]
    rows.append([1e300, -1e300, 3.4028235e38, 1e-50, -0.0, 0.1, 1.0 / 3, float(2**40 + 1)] * 9)
    with np.errstate(over="ignore"):  # 1e300 -> inf, as the job's cast always did
        before = np.asarray(rows, dtype=np.float32)  # what the job computed from float lists
    packed = [pack_row(r) for r in rows]
    through_json = orjson.loads(orjson.dumps(packed))  # as the state stores it
    after = rows_matrix(through_json, 72)
    assert after.dtype == np.float32 and after.shape == (51, 72)
    assert after.tobytes() == before.tobytes()
    assert all(isinstance(p, str) and len(p) == 384 for p in packed)  # 72 float32 in base64


def test_rows_stored_as_float_lists_still_read_and_mix_with_packed_ones():
    old = [0.1, 2.0, -1.0, 1234.5678]
    new = [3.0, 0.2, math.pi, -7.25]
    x = rows_matrix([old, pack_row(new), old], 4)
    assert x.tobytes() == np.asarray([old, new, old], dtype=np.float32).tobytes()


def test_a_row_of_another_width_is_refused():
    with pytest.raises(ValueError, match="3 features"):
        rows_matrix([pack_row([1.0, 2.0, 3.0]), pack_row([1.0, 2.0])], 3)


def test_no_rows_is_an_empty_matrix():
    assert rows_matrix([], 72).shape == (0, 72)


def test_fits_tells_each_width_apart_packed_or_not():
    from stream.core.rows import fits

    for w in range(1, 100):
        packed = pack_row([0.25] * w)
        assert [v for v in range(1, 100) if fits(packed, v)] == [w]
        assert fits([0.25] * w, w) and not fits([0.25] * w, w + 1)
