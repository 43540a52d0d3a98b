"""Seeded synthetic card transactions with labelled fraud: the ``transactions`` stream kind.

This is the simulator; the finite and endless feeds built on it, the label helpers and the risk
pipeline's bench load are in ``transaction_feeds``. Records carry ``is_fraud`` (0/1) only when
``with_labels=True``; the contract parser ignores unknown fields, so a labelled record can still
be published, but feeds normally leave it out.

The transaction world (all numbers are assumptions of this simulator, not facts about any
real portfolio; every metric computed from it must be reported as *synthetic*):

* accounts have a home country (and its time zone and currency), a usual spend (lognormal per
  account), a transaction rate, preferred merchant categories and channels; a few legitimate
  accounts use high-risk categories (gambling, crypto...), some shop at night, some travel
  (a trip switches their country for days) and some have legitimate shopping sprees;
* fraud comes in two kinds: *account takeover* bursts (many fast transactions, usually a new
  country, mostly high-risk categories, e-commerce/ATM, often at night, larger amounts) and
  quieter *card-not-present* frauds (one or two online purchases, often in the home country),
  which are deliberately hard to tell from normal spend;
* ``fraud_rate`` is the share of fraudulent transactions, held per simulated day.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from stream.core.contracts import SCHEMA_VERSION
from stream.tools.synthetic.world import (
    ATM_AMOUNTS,
    ATM_CATEGORY,
    CURRENCY,
    DAY_MS,
    FRAUD_COUNTRIES,
    HIGH_RISK,
    HOME_COUNTRIES,
    HOUR_MS,
    MINUTE_MS,
    NORMAL_CATEGORIES,
    POS_CHANNELS,
    START_MS,
    TRAVEL_COUNTRIES,
)


@dataclass(slots=True)
class _Account:
    account_id: str
    home: str
    tz: int
    log_mu: float
    log_sigma: float
    rate: float  # expected transactions per day
    cat_p: np.ndarray  # over NORMAL_CATEGORIES
    chan_p: np.ndarray  # over pos, ecom, mobile (ATM/transfer handled separately)
    atm_p: float
    risky_p: float  # share of legitimate spend in high-risk categories
    night_owl: bool
    trip_country: str | None = None
    trip_until: int = -1  # day index (exclusive)


@dataclass
class TransactionSimulator:
    """A seeded world of card accounts, simulated one day at a time (``day(d)``)."""

    n_accounts: int = 2000
    fraud_rate: float = 0.01
    seed: int = 7
    start_ms: int = START_MS
    with_labels: bool = True
    ato_share: float = 0.7  # share of fraud *transactions* from account-takeover bursts
    _rng: np.random.Generator = field(init=False, repr=False)
    _accounts: list[_Account] = field(init=False, repr=False)
    _counter: int = field(init=False, default=0, repr=False)
    _carry: list[tuple] = field(init=False, default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.fraud_rate < 0.5:
            raise ValueError(f"fraud_rate must be in [0, 0.5), got {self.fraud_rate}")
        if self.n_accounts < 1:
            raise ValueError("n_accounts must be >= 1")
        self._rng = np.random.default_rng(self.seed)
        rng = self._rng
        homes = list(HOME_COUNTRIES)
        w = np.array([HOME_COUNTRIES[c][0] for c in homes])
        w = w / w.sum()
        self._accounts = []
        for i in range(self.n_accounts):
            home = homes[int(rng.choice(len(homes), p=w))]
            risky = rng.random() < 0.06
            self._accounts.append(
                _Account(
                    account_id=f"acct-{i:06d}",
                    home=home,
                    tz=HOME_COUNTRIES[home][1],
                    log_mu=float(np.log(rng.uniform(12.0, 160.0))),
                    log_sigma=float(rng.uniform(0.45, 1.0)),
                    rate=float(np.clip(rng.lognormal(np.log(1.6), 0.6), 0.2, 12.0)),
                    cat_p=rng.dirichlet(np.full(len(NORMAL_CATEGORIES), 0.6)),
                    chan_p=rng.dirichlet([4.0, 2.0, 1.5]),
                    atm_p=float(rng.uniform(0.0, 0.12)),
                    risky_p=float(rng.uniform(0.1, 0.4)) if risky else 0.0,
                    night_owl=bool(rng.random() < 0.08),
                )
            )
        acc = self._accounts
        self._a_rate = np.array([a.rate for a in acc])
        self._a_mu = np.array([a.log_mu for a in acc])
        self._a_sigma = np.array([a.log_sigma for a in acc])
        self._a_tz = np.array([a.tz for a in acc], dtype=np.float64)
        self._a_hour = np.where([a.night_owl for a in acc], 22.5, 14.0)
        self._a_atm = np.array([a.atm_p for a in acc])
        self._a_risky = np.array([a.risky_p for a in acc])
        self._a_cat_cum = np.cumsum(np.stack([a.cat_p for a in acc]), axis=1)
        self._a_chan_cum = np.cumsum(np.stack([a.chan_p for a in acc]), axis=1)

    # -- records -------------------------------------------------------------------
    def _record(
        self, acct: _Account, ts: int, amount: float, country: str, category: str, channel: str, fraud: int
    ) -> dict:
        self._counter += 1
        rec = {
            "v": SCHEMA_VERSION,
            "event_id": f"txn-{self.seed}-{self._counter:010d}",
            "account_id": acct.account_id,
            "ts": int(ts),
            "amount": round(float(max(amount, 0.5)), 2),
            "currency": CURRENCY.get(country, "USD"),
            "merchant_category": category,
            "channel": channel,
            "country": country,
            "merchant_id": f"m-{category[:8]}-{(self._counter * 2654435761) % 500:03d}",
        }
        if self.with_labels:
            rec["is_fraud"] = int(fraud)
        return rec

    def _hours_ms(self, acct: _Account, n: int) -> np.ndarray:
        """``n`` local-daytime moments of the day (UTC ms offsets); night owls shifted late."""
        local_h = self._rng.normal(22.5 if acct.night_owl else 14.0, 3.5, size=n)
        return (((local_h - acct.tz) % 24.0) * HOUR_MS).astype(np.int64)

    def _legit_day(self, d: int, day0: int) -> list[tuple]:
        """Every account's legitimate transactions of day ``d`` (vectorised over accounts)."""
        rng = self._rng
        accts = self._accounts
        for a in accts:  # trips end / start
            if a.trip_country is not None and d >= a.trip_until:
                a.trip_country = None
        starting = np.flatnonzero(rng.random(len(accts)) < 0.006)
        for i in starting:
            a = accts[i]
            if a.trip_country is None:
                options = [c for c in TRAVEL_COUNTRIES if c != a.home]
                a.trip_country = options[int(rng.integers(len(options)))]
                a.trip_until = d + int(rng.integers(2, 10))
        travelling = np.array([a.trip_country is not None for a in accts])
        n = rng.poisson(self._a_rate * np.where(travelling, 1.3, 1.0))
        idx = np.repeat(np.arange(len(accts)), n)
        local_h = rng.normal(self._a_hour[idx], 3.5)
        times = (
            day0
            + (((local_h - self._a_tz[idx]) % 24.0) * HOUR_MS).astype(np.int64)
            + rng.integers(0, MINUTE_MS, size=len(idx))
        )
        spree = np.flatnonzero(rng.random(len(accts)) < 0.02)  # legitimate shopping sprees
        if len(spree):
            k = rng.integers(3, 8, size=len(spree))
            s_idx = np.repeat(spree, k)
            t0 = ((rng.normal(self._a_hour[spree], 3.5) - self._a_tz[spree]) % 24.0 * HOUR_MS).astype(np.int64)
            gaps = rng.exponential(8 * MINUTE_MS, size=len(s_idx)).astype(np.int64) + 1000
            offs = np.concatenate([np.cumsum(g) for g in np.split(gaps, np.cumsum(k)[:-1])])
            idx = np.concatenate([idx, s_idx])
            times = np.concatenate([times, day0 + np.repeat(t0, k) + offs])
        m = len(idx)
        u = rng.random(m)
        chan = np.minimum((self._a_chan_cum[idx] < rng.random(m)[:, None]).sum(1), 2)
        cat = np.minimum((self._a_cat_cum[idx] < rng.random(m)[:, None]).sum(1), len(NORMAL_CATEGORIES) - 1)
        risky = rng.random(m) < self._a_risky[idx]
        hr = rng.integers(0, len(HIGH_RISK), size=m)
        amt = rng.lognormal(self._a_mu[idx], self._a_sigma[idx])
        cash = rng.choice(ATM_AMOUNTS, size=m)
        xfer = rng.lognormal(self._a_mu[idx] + 1.2, 0.8)
        atm_p = self._a_atm[idx]
        out = []
        for i in range(m):
            a = accts[idx[i]]
            country = a.trip_country or a.home
            ts = int(times[i])
            if u[i] < atm_p[i]:
                out.append((ts, a, float(cash[i]), country, ATM_CATEGORY, "atm", 0))
            elif u[i] < atm_p[i] + 0.03:
                out.append((ts, a, float(xfer[i]), country, "money_transfer", "transfer", 0))
            else:
                category = HIGH_RISK[hr[i]] if risky[i] else NORMAL_CATEGORIES[cat[i]]
                out.append((ts, a, float(amt[i]), country, category, POS_CHANNELS[chan[i]], 0))
        return out

    def _ato_burst(self, acct: _Account, day0: int, max_n: int) -> list[tuple]:
        rng = self._rng
        n = min(max_n, 3 + int(rng.poisson(5)))
        if rng.random() < 0.5:
            t = day0 + int(rng.uniform(0, 6) * HOUR_MS)  # at night, UTC
        else:
            t = day0 + int(rng.uniform(0, 24) * HOUR_MS)
        country = FRAUD_COUNTRIES[int(rng.integers(len(FRAUD_COUNTRIES)))] if rng.random() < 0.8 else acct.home
        base = math.log(max(math.exp(acct.log_mu) * 3.0, 150.0))
        out = []
        for _ in range(n):
            t += int(rng.exponential(4 * MINUTE_MS)) + 5000
            u = rng.random()
            if u < 0.3:
                channel, category = "atm", ATM_CATEGORY if rng.random() < 0.5 else "cash_advance"
            else:
                channel = "ecom" if u < 0.85 else ("mobile" if u < 0.93 else "transfer")
                if channel == "transfer":
                    category = "money_transfer"
                elif rng.random() < 0.6:
                    category = HIGH_RISK[int(rng.integers(len(HIGH_RISK)))]
                else:
                    category = ("electronics", "retail", "travel", "clothing")[int(rng.integers(4))]
            out.append((t, acct, float(rng.lognormal(base, 0.7)), country, category, channel, 1))
        return out

    def _cnp(self, acct: _Account, day0: int, max_n: int) -> list[tuple]:
        rng = self._rng
        n = min(max_n, 1 + int(rng.random() < 0.35))
        t = day0 + int(self._hours_ms(acct, 1)[0])
        country = acct.home if rng.random() < 0.6 else TRAVEL_COUNTRIES[int(rng.integers(len(TRAVEL_COUNTRIES)))]
        out = []
        for _ in range(n):
            t += int(rng.exponential(45 * MINUTE_MS)) + 1000
            category = (
                HIGH_RISK[int(rng.integers(len(HIGH_RISK)))]
                if rng.random() < 0.25
                else ("electronics", "retail", "clothing", "travel", "entertainment")[int(rng.integers(5))]
            )
            amount = float(rng.lognormal(acct.log_mu + 0.9, 0.8))
            out.append((t, acct, amount, country, category, "ecom", 1))
        return out

    def day(self, d: int) -> list[dict]:
        """Day ``d``'s transactions (time ordered); events spilling past midnight come tomorrow."""
        rng = self._rng
        day0 = self.start_ms + d * DAY_MS
        events = list(self._carry)
        events.extend(self._legit_day(d, day0))
        n_legit = sum(1 for e in events if not e[6])
        target = int(round(self.fraud_rate / (1.0 - self.fraud_rate) * n_legit)) if self.fraud_rate else 0
        n_fraud = sum(1 for e in events if e[6])
        while n_fraud < target:
            acct = self._accounts[int(rng.integers(len(self._accounts)))]
            remaining = target - n_fraud
            burst = (
                self._ato_burst(acct, day0, remaining)
                if rng.random() < self.ato_share
                else self._cnp(acct, day0, remaining)
            )
            events.extend(burst)
            n_fraud += len(burst)
        events.sort(key=lambda e: (e[0], e[1].account_id))
        end = day0 + DAY_MS
        self._carry = [e for e in events if e[0] >= end]
        return [self._record(e[1], e[0], e[2], e[3], e[4], e[5], e[6]) for e in events if e[0] < end]

    def stream(self, days: int | None = None) -> Iterator[dict]:
        """Transactions in time order; endless when ``days`` is None."""
        d = 0
        while days is None or d < days:
            yield from self.day(d)
            d += 1
