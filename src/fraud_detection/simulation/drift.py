"""Drift scenarios the simulator can inject from a given day (params.yaml `simulate.drift`).

- `amount_inflation`: from `start_day`, every drawn amount is multiplied by `factor` (a covariate shift). It acts on
  the drawn amounts before the handbook's scenarios are labelled, so "amount > amount_threshold is fraud" (scenario 1)
  and the x5 of scenario 3 still hold in the data; the price is that more amounts cross the threshold.
- `new_fraud_pattern` (card testing, scenario 4): for `days` days from `start_day`, `customers_per_day` cards a day
  are tested with `tx_per_card` extra transactions of `U(min_amount, max_amount)` at night (before `night_end_hour`),
  at terminals drawn anywhere on the grid (almost never near the customer). Low amounts at far terminals: the
  handbook's scenarios never show them, so a model trained on those misses them.
- `terminal_cluster` (scenario 5): for `days` days from `start_day`, the terminals within `radius` of `center` are
  compromised and each of their transactions is fraud with probability `fraud_fraction`.

Entry k draws from its own generator `default_rng([seed, k])`, after the handbook's draws: an empty list changes
nothing, and one entry's draws do not depend on the others. Labels are applied after the handbook's (scenario 5
overwrites them); the card-testing rows are added last and merged into time order.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

SECONDS_PER_HOUR = 3_600
SECONDS_PER_DAY = 86_400
GRID_SIZE = 100.0
CARD_TESTING_SCENARIO = 4
TERMINAL_CLUSTER_SCENARIO = 5

Check = tuple[Callable[[Any], bool], str]  # (is the value valid, what was expected)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _integer_at_least(low: int) -> Check:
    return (lambda v: _is_integer(v) and v >= low), f"an integer >= {low}"


def _number_above(low: float, *, inclusive: bool = False) -> Check:
    if inclusive:
        return (lambda v: _is_number(v) and v >= low), f"a number >= {low}"
    return (lambda v: _is_number(v) and v > low), f"a number > {low}"


@dataclass(frozen=True)
class AmountInflation:
    """From `start_day`, every drawn amount is multiplied by `factor`."""

    start_day: int
    factor: float
    kind: ClassVar[str] = "amount_inflation"

    @classmethod
    def checks(cls, entry: Mapping[str, Any]) -> dict[str, Check]:
        return {"factor": _number_above(0)}


@dataclass(frozen=True)
class CardTesting:
    """For `days` days from `start_day`, `customers_per_day` cards a day get small night-time frauds far from home."""

    start_day: int
    customers_per_day: int = 20
    days: int = 7
    tx_per_card: int = 3
    min_amount: float = 1.0
    max_amount: float = 5.0
    night_end_hour: float = 5.0
    kind: ClassVar[str] = "new_fraud_pattern"

    @classmethod
    def checks(cls, entry: Mapping[str, Any]) -> dict[str, Check]:
        low = entry.get("min_amount", cls.min_amount)
        return {
            "customers_per_day": _integer_at_least(1),
            "days": _integer_at_least(1),
            "tx_per_card": _integer_at_least(1),
            "min_amount": _number_above(0),
            "max_amount": _number_above(low, inclusive=True),
            "night_end_hour": ((lambda v: _is_number(v) and 0 < v <= 24), "a number of hours in (0, 24]"),
        }


@dataclass(frozen=True)
class TerminalCluster:
    """For `days` days from `start_day`, a share of the transactions at terminals near `center` is fraud."""

    start_day: int
    center: tuple[float, float]
    radius: float = 10.0
    days: int = 14
    fraud_fraction: float = 0.5
    kind: ClassVar[str] = "terminal_cluster"

    @classmethod
    def checks(cls, entry: Mapping[str, Any]) -> dict[str, Check]:
        def on_grid(v: Any) -> bool:
            return isinstance(v, list | tuple) and len(v) == 2 and all(_is_number(c) and 0 <= c <= GRID_SIZE for c in v)

        return {
            "center": (on_grid, f"[x, y] with 0 <= x, y <= {GRID_SIZE:g}"),
            "radius": _number_above(0),
            "days": _integer_at_least(1),
            "fraud_fraction": ((lambda v: _is_number(v) and 0 < v <= 1), "a number in (0, 1]"),
        }


DriftScenario = AmountInflation | CardTesting | TerminalCluster
KINDS: dict[str, type[DriftScenario]] = {cls.kind: cls for cls in (AmountInflation, CardTesting, TerminalCluster)}


def drift_from_params(entries: Any, n_days: int) -> tuple[DriftScenario, ...]:
    """Parse and validate `simulate.drift` (a list of `{kind, start_day, ...}`; None or [] means no drift)."""
    if entries is None:
        return ()
    if not isinstance(entries, list | tuple):
        raise ValueError(f"simulate.drift is {entries!r}; expected a list of {{kind: ..., start_day: ...}} entries")
    return tuple(_parse_entry(index, entry, n_days) for index, entry in enumerate(entries))


def _parse_entry(index: int, entry: Any, n_days: int) -> DriftScenario:
    where = f"simulate.drift[{index}]"
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where} is {entry!r}; expected a mapping {{kind: ..., start_day: ..., ...}}")
    kind = entry.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValueError(f"{where}.kind is {kind!r}; expected one of {sorted(KINDS)}")
    cls = KINDS[kind]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    required = [name for name, f in fields.items() if f.default is dataclasses.MISSING]
    given = {key: value for key, value in entry.items() if key != "kind"}
    if unknown := sorted(set(given) - set(fields), key=str):
        raise ValueError(f"{where} ({kind}) has unknown field(s) {unknown}; expected only {['kind', *fields]}")
    if missing := [name for name in required if name not in given]:
        raise ValueError(f"{where} ({kind}) lacks field(s) {missing}; expected {['kind', *required]} at least")
    checks = {"start_day": _start_day_check(n_days), **cls.checks(entry)}
    for name in (name for name in fields if name in given):  # declared order: min_amount before max_amount
        is_valid, expected = checks[name]
        if not is_valid(given[name]):
            raise ValueError(f"{where}.{name} is {given[name]!r}; expected {expected}")
    return cls(**{name: _as_declared(fields[name].type, value) for name, value in given.items()})


def _as_declared(declared: Any, value: Any) -> Any:
    """YAML gives 10 for 10.0 and lists for pairs: store what the dataclass declares."""
    if declared == "float":
        return float(value)
    if declared == "tuple[float, float]":
        return (float(value[0]), float(value[1]))
    return value


def _start_day_check(n_days: int) -> Check:
    return (lambda v: _is_integer(v) and 0 <= v < n_days), f"a 0-based day index in 0..{n_days - 1}"


def inflate_amounts(tx: dict[str, np.ndarray], drift: tuple[DriftScenario, ...]) -> None:
    """Multiply, in place, the drawn amounts from each `amount_inflation`'s start day by its factor."""
    for scenario in drift:
        if isinstance(scenario, AmountInflation):
            rows = tx["day"] >= scenario.start_day
            tx["amount"][rows] = np.round(tx["amount"][rows] * scenario.factor, 2)


def add_drift_frauds(
    tx: dict[str, np.ndarray],
    labels: np.ndarray,
    drift: tuple[DriftScenario, ...],
    terminal_xy: np.ndarray,
    seed: int,
    n_days: int,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Label the terminal clusters, then add the card-testing rows in time order; returns (tx, scenario labels)."""
    extra = []
    for k, scenario in enumerate(drift):
        rng = np.random.default_rng([seed, k])
        if isinstance(scenario, TerminalCluster):
            _label_terminal_cluster(rng, scenario, tx, labels, terminal_xy)
        elif isinstance(scenario, CardTesting):
            extra.append(_card_testing_rows(rng, scenario, int(tx["n_customers"]), len(terminal_xy), n_days))
    if not extra:
        return tx, labels
    rows = {key: np.concatenate([e[key] for e in extra]) for key in extra[0]}
    return _insert_in_time_order(tx, labels, rows)


def _label_terminal_cluster(
    rng: np.random.Generator,
    scenario: TerminalCluster,
    tx: dict[str, np.ndarray],
    labels: np.ndarray,
    terminal_xy: np.ndarray,
) -> None:
    near = ((terminal_xy - np.asarray(scenario.center)) ** 2).sum(axis=1) < scenario.radius**2
    window = (tx["day"] >= scenario.start_day) & (tx["day"] < scenario.start_day + scenario.days)
    rows = np.flatnonzero(near[tx["terminal"]] & window)
    labels[rows[rng.random(len(rows)) < scenario.fraud_fraction]] = TERMINAL_CLUSTER_SCENARIO


def _card_testing_rows(
    rng: np.random.Generator, scenario: CardTesting, n_customers: int, n_terminals: int, n_days: int
) -> dict[str, np.ndarray]:
    """The tests' rows (unsorted): each tested card makes `tx_per_card` transactions on the night it is tested."""
    days = np.arange(scenario.start_day, min(scenario.start_day + scenario.days, n_days))
    per_day = min(scenario.customers_per_day, n_customers)
    cards = np.concatenate([rng.choice(n_customers, size=per_day, replace=False) for _ in days])
    customer = np.repeat(cards, scenario.tx_per_card)
    day = np.repeat(days, per_day * scenario.tx_per_card)
    night_end = max(int(scenario.night_end_hour * SECONDS_PER_HOUR), 2)
    seconds_in_day = rng.integers(1, night_end, size=len(day))
    return {
        "seconds": day * SECONDS_PER_DAY + seconds_in_day,
        "day": day,
        "customer": customer,
        "terminal": rng.integers(0, n_terminals, size=len(day)),
        "amount": np.round(rng.uniform(scenario.min_amount, scenario.max_amount, size=len(day)), 2),
    }


def _insert_in_time_order(
    tx: dict[str, np.ndarray], labels: np.ndarray, rows: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Merge `rows` (labelled card testing) into the time-sorted `tx`; ties go after the existing rows."""
    order = np.argsort(rows["seconds"], kind="stable")
    at = np.searchsorted(tx["seconds"], rows["seconds"][order], side="right")
    merged = {key: np.insert(tx[key], at, rows[key][order]) for key in rows}
    new_labels = np.full(len(order), CARD_TESTING_SCENARIO, dtype=labels.dtype)
    return {**tx, **merged}, np.insert(labels, at, new_labels)
