"""Rolling tick windows as compact fixed-size binary records.

A symbol's history is one byte string of ``TICK_RECORD`` rows (28 bytes each) ordered by
source position. Redis appends and trims it server-side (``stream/state/window_append.lua``);
this module is the one place that knows the layout, on both sides of that script.
"""
from __future__ import annotations

import numpy as np

TICK_RECORD = np.dtype([("offset", "<i8"), ("ts", "<i8"), ("price", "<f8"), ("partition", "<i4")])
RECORD_SIZE = TICK_RECORD.itemsize  # 28; the Lua script hard-codes the same layout


def pack_tick(partition: int, offset: int, ts: int, price: float) -> bytes:
    rec = np.zeros(1, dtype=TICK_RECORD)
    rec[0] = (offset, ts, price, partition)
    return rec.tobytes()


def unpack(buf: bytes) -> np.ndarray:
    """Records from a window byte string (a structured array; empty for b'')."""
    if len(buf) % RECORD_SIZE:
        raise ValueError(f"window buffer of {len(buf)} bytes is not a whole number of {RECORD_SIZE}-byte records")
    return np.frombuffer(buf, dtype=TICK_RECORD)


def full_windows(buffers: list[bytes], length: int) -> tuple[np.ndarray, np.ndarray]:
    """Stack the price windows that have exactly ``length`` prices.

    Returns (prices (M, length) float64, indices of ``buffers`` that were full). Shorter
    windows (a symbol still warming up) are left out: no forecast until the window is full.
    """
    idx = [i for i, b in enumerate(buffers) if len(b) == length * RECORD_SIZE]
    if not idx:
        return np.empty((0, length)), np.empty(0, dtype=np.int64)
    joined = b"".join(buffers[i] for i in idx)
    prices = np.frombuffer(joined, dtype=TICK_RECORD)["price"].reshape(len(idx), length)
    return prices, np.asarray(idx, dtype=np.int64)
