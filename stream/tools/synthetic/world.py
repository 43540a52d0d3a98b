"""When and where the synthetic world lives: its clock, and the card accounts' countries, currencies
and merchant categories.

Apart from the simulator (``transactions``) because these are the assumptions of the simulated
world, read and tuned on their own; none of them is a fact about any real portfolio.
"""

from __future__ import annotations

import numpy as np

from stream.core.contracts import CHANNELS
from stream.core.features import HIGH_RISK_CATEGORIES

START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000

NORMAL_CATEGORIES: tuple[str, ...] = (
    "grocery",
    "restaurant",
    "fuel",
    "retail",
    "transport",
    "travel",
    "entertainment",
    "utilities",
    "health",
    "electronics",
    "pharmacy",
    "clothing",
)
HIGH_RISK: tuple[str, ...] = tuple(sorted(HIGH_RISK_CATEGORIES))
ATM_CATEGORY = "atm_withdrawal"
MERCHANT_CATEGORIES: tuple[str, ...] = NORMAL_CATEGORIES + HIGH_RISK + (ATM_CATEGORY,)

# Home countries (weight, UTC offset in hours, currency).
HOME_COUNTRIES: dict[str, tuple[float, int, str]] = {
    "GB": (0.20, 0, "GBP"),
    "DE": (0.15, 1, "EUR"),
    "FR": (0.12, 1, "EUR"),
    "NL": (0.08, 1, "EUR"),
    "ES": (0.08, 1, "EUR"),
    "IT": (0.08, 1, "EUR"),
    "IE": (0.04, 0, "EUR"),
    "BE": (0.04, 1, "EUR"),
    "SE": (0.04, 1, "SEK"),
    "PL": (0.05, 1, "PLN"),
    "US": (0.08, -5, "USD"),
    "CA": (0.04, -5, "CAD"),
}
# Where fraudsters (and not usually customers) transact from.
FRAUD_COUNTRIES: tuple[str, ...] = ("NG", "RU", "BR", "CN", "RO", "UA", "VN", "ID", "MX", "TR", "PH", "KE")
CURRENCY = {c: v[2] for c, v in HOME_COUNTRIES.items()} | {
    "NG": "NGN",
    "RU": "RUB",
    "BR": "BRL",
    "CN": "CNY",
    "RO": "RON",
    "UA": "UAH",
    "VN": "VND",
    "ID": "IDR",
    "MX": "MXN",
    "TR": "TRY",
    "PH": "PHP",
    "KE": "KES",
    "PT": "EUR",
    "GR": "EUR",
    "TH": "THB",
    "JP": "JPY",
    "AE": "AED",
    "HR": "EUR",
}
TRAVEL_COUNTRIES: tuple[str, ...] = tuple(HOME_COUNTRIES) + ("PT", "GR", "TH", "JP", "AE", "HR", "MX", "TR")

POS_CHANNELS: tuple[str, ...] = ("pos", "ecom", "mobile")
ATM_AMOUNTS = np.array([20, 40, 50, 60, 80, 100, 150, 200, 250, 300], dtype=np.float64)
CHANNEL_ORDER: tuple[str, ...] = ("pos", "ecom", "mobile", "atm", "transfer")
assert set(CHANNEL_ORDER) == set(CHANNELS), "synthetic channels out of step with the contract"
