"""Code tables of the card features: e-mail providers and device families grouped into small
integer codes, and numeric card/address codes read from strings.

Kept apart from ``stream.core.cardrisk`` (the per-card state and features) because they are
lookup tables, not behaviour; both training and the stream reach them through ``cardrisk``.
"""

from __future__ import annotations

import math
from functools import lru_cache

# E-mail providers grouped by brand; index = the feature value (0 = none given, last = other).
EMAIL_GROUPS = ("", "gmail", "hotmail", "yahoo", "anonymous", "aol", "apple", "isp_us", "mx", "protonmail", "other")
_EMAIL_BRANDS = {
    "gmail": "gmail",
    "googlemail": "gmail",
    "hotmail": "hotmail",
    "outlook": "hotmail",
    "live": "hotmail",
    "msn": "hotmail",
    "yahoo": "yahoo",
    "ymail": "yahoo",
    "rocketmail": "yahoo",
    "anonymous": "anonymous",
    "aol": "aol",
    "aim": "aol",
    "icloud": "apple",
    "me": "apple",
    "mac": "apple",
    "comcast": "isp_us",
    "verizon": "isp_us",
    "sbcglobal": "isp_us",
    "cox": "isp_us",
    "att": "isp_us",
    "bellsouth": "isp_us",
    "charter": "isp_us",
    "earthlink": "isp_us",
    "optonline": "isp_us",
    "frontier": "isp_us",
    "prodigy": "mx",
    "protonmail": "protonmail",
}
DEVICE_FAMILIES = ("", "windows", "ios", "macos", "android", "browser", "other")
MISSING = -1.0


@lru_cache(maxsize=1 << 12)
def email_group(domain: str | None) -> int:
    """Per transaction over a few dozen distinct domains: cached (a pure function of the string)."""
    if not domain:
        return 0
    brand = _EMAIL_BRANDS.get(domain.lower().split(".", 1)[0], "other")
    return EMAIL_GROUPS.index(brand)


@lru_cache(maxsize=1 << 14)
def device_family(device: str | None) -> int:
    """Per transaction over a few thousand distinct device strings: cached, like ``numeric_code``."""
    if not device:
        return 0
    d = device.lower()
    if d.startswith("windows"):
        return 1
    if d.startswith("ios"):
        return 2
    if d.startswith("macos"):
        return 3
    if "build" in d or d.startswith(("sm-", "moto", "lg-", "huawei", "android")):
        return 4
    if d.startswith(("trident", "rv:")):
        return 5
    return 6


@lru_cache(maxsize=1 << 14)
def numeric_code(v: str | None) -> float:
    """A numeric code field ('150', '87.0') as a float; missing or non-numeric -> -1.

    Six per transaction over a few thousand distinct codes: cached (a pure function of the string)."""
    if v is None:
        return MISSING
    try:
        x = float(v)
    except ValueError:
        return MISSING
    return x if math.isfinite(x) else MISSING
