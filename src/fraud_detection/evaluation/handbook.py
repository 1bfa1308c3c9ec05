"""The handbook's baseline features, exactly as the book defines them: the yardstick the candidate must beat.

Le Borgne, Siblini, Lebichot, Bontempi, "Reproducible Machine Learning for Credit Card Fraud Detection - Practical
Handbook" (ULB, 2022), chapter 3.3 "Baseline feature transformation" (written from its text; no code taken):

- `TX_AMOUNT`, the amount;
- `TX_DURING_WEEKEND`: the transaction's weekday is Saturday or Sunday; `TX_DURING_NIGHT`: its hour is 6 or less
  (00:00-06:59);
- customer spending (the RFM framework, 3.3.2): for N = 1, 7, 30 days, the number of the customer's transactions
  and their mean amount in the window of N days that ends with the transaction, the transaction itself included
  (a time-based rolling window: the transactions at times in (t - N days, t], up to this one);
- terminal risk (3.3.3): for N = 1, 7, 30 days, the number of the terminal's transactions and the share of them
  that are frauds in the N days that end `delay` days before the transaction, (t - delay - N days, t - delay]: the
  labels of more recent transactions are not known yet (the delay is the label delay, 7 days in the book); a
  terminal with no transaction there has risk 0.

Chapter 3.4 ("Baseline fraud detection system") and 5.3 ("Model selection") train a logistic regression and a
random forest on these 15 features, standardised; the forest's best setting in 5.3 is 100 trees of depth 20.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

WINDOWS_DAYS = (1, 7, 30)
MICROS_PER_DAY = 86_400_000_000
NIGHT_LAST_HOUR = 6
HANDBOOK_FEATURES = (
    "TX_AMOUNT",
    "TX_DURING_WEEKEND",
    "TX_DURING_NIGHT",
    *(f"CUSTOMER_ID_{kind}_{n}DAY_WINDOW" for n in WINDOWS_DAYS for kind in ("NB_TX", "AVG_AMOUNT")),
    *(f"TERMINAL_ID_{kind}_{n}DAY_WINDOW" for n in WINDOWS_DAYS for kind in ("NB_TX", "RISK")),
)
RANDOM_FOREST_TREES, RANDOM_FOREST_DEPTH = 100, 20

Scorer = Callable[[np.ndarray], np.ndarray]


def handbook_features(transactions: pl.DataFrame, delay_days: int) -> pl.DataFrame:
    """`transactions` (transaction_id, tx_datetime, customer_id, terminal_id, tx_amount, tx_fraud) with the 15
    HANDBOOK_FEATURES added, in the input's row order."""
    order = transactions.with_row_index("_row").sort("tx_datetime", "transaction_id")
    micros = order["tx_datetime"].dt.epoch("us").to_numpy()
    amount, fraud = order["tx_amount"].to_numpy().astype(np.float64), order["tx_fraud"].to_numpy().astype(np.float64)
    columns = {
        "TX_AMOUNT": amount,
        "TX_DURING_WEEKEND": (order["tx_datetime"].dt.weekday() >= 6).cast(pl.Int8).to_numpy(),  # ISO: Sat 6, Sun 7
        "TX_DURING_NIGHT": (order["tx_datetime"].dt.hour() <= NIGHT_LAST_HOUR).cast(pl.Int8).to_numpy(),
    }
    customers = _Groups(order["customer_id"].to_numpy(), micros)
    terminals = _Groups(order["terminal_id"].to_numpy(), micros)
    delay = delay_days * MICROS_PER_DAY
    for n in WINDOWS_DAYS:
        window = n * MICROS_PER_DAY
        count, total = customers.up_to(window, np.ones_like(amount)), customers.up_to(window, amount)
        columns[f"CUSTOMER_ID_NB_TX_{n}DAY_WINDOW"] = count
        columns[f"CUSTOMER_ID_AVG_AMOUNT_{n}DAY_WINDOW"] = total / count  # count >= 1: the transaction itself
        count = terminals.up_to(delay + window, np.ones_like(amount)) - terminals.up_to(delay, np.ones_like(amount))
        frauds = terminals.up_to(delay + window, fraud) - terminals.up_to(delay, fraud)
        columns[f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW"] = count
        risk = np.divide(frauds, count, out=np.zeros_like(frauds), where=count > 0)
        columns[f"TERMINAL_ID_RISK_{n}DAY_WINDOW"] = risk
    added = pl.DataFrame({name: columns[name] for name in HANDBOOK_FEATURES}).with_columns(_row=order["_row"])
    return transactions.with_row_index("_row").join(added, on="_row", how="left", maintain_order="left").drop("_row")


class _Groups:
    """Rows in time order, and each row's group (a customer or a terminal): sums over the group's rows at times in
    (t - window, t] up to the row itself, as a time-based rolling window does."""

    def __init__(self, keys: np.ndarray, micros: np.ndarray) -> None:
        self._order = np.lexsort((np.arange(len(keys)), micros, keys))  # by group, then time, then row
        self._keys, self._micros = keys[self._order], micros[self._order]
        self._starts = np.searchsorted(self._keys, self._keys, side="left")  # each row's group's first row
        self._firsts: dict[int, np.ndarray] = {}

    def up_to(self, window: int, values: np.ndarray) -> np.ndarray:
        """For every row (in the caller's order): the sum of `values` over its group's rows in (t - window, t]
        that come up to it."""
        ordered = values[self._order]
        cumulative = np.concatenate([[0.0], np.cumsum(ordered)])
        if window not in self._firsts:
            self._firsts[window] = _first_after(self._keys, self._micros, self._micros - window, self._starts)
        first = self._firsts[window]
        sums = cumulative[np.arange(1, len(ordered) + 1)] - cumulative[first]
        out = np.empty_like(sums)
        out[self._order] = sums
        return out


def _first_after(keys: np.ndarray, micros: np.ndarray, bounds: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """For each row, the first row of its group whose time is after its bound (keys, then micros, sorted)."""
    first = np.empty(len(keys), dtype=np.int64)
    ends = np.append(np.flatnonzero(np.diff(keys)) + 1, len(keys))
    for start, end in zip(np.unique(starts), ends, strict=True):
        first[start:end] = start + np.searchsorted(micros[start:end], bounds[start:end], side="right")
    return first


def logistic_regression(matrix: np.ndarray, labels: np.ndarray, seed: int) -> Scorer:
    """The book's logistic regression: scikit-learn's defaults (C = 1) on standardised features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=seed))
    model.fit(matrix, labels)
    return lambda rows: model.predict_proba(rows)[:, 1]


def random_forest(matrix: np.ndarray, labels: np.ndarray, seed: int) -> Scorer:
    """The book's random forest of chapter 5.3: 100 trees of depth at most 20, on standardised features."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    forest = RandomForestClassifier(n_estimators=RANDOM_FOREST_TREES, max_depth=RANDOM_FOREST_DEPTH,
                                    random_state=seed, n_jobs=-1)  # fmt: skip
    model = make_pipeline(StandardScaler(), forest).fit(matrix, labels)
    return lambda rows: model.predict_proba(rows)[:, 1]
