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

Entry k draws from its own generator `default_rng([*stream, k])`, after the handbook's draws: `stream` is `(seed,)` in
the simulated run and the day's own in a continued day (simulator.simulate_continuation), so an empty list changes
nothing and one entry's draws do not depend on the others. An entry acts on the days it is given only: one starting
after the run acts in the continued (traffic) days. Labels are applied after the handbook's (scenario 5 overwrites
them); the card-testing rows are added last and merged into time order.
"""

from __future__ import annotations

import numpy as np

from fraud_detection.simulation.params import AmountInflation, CardTesting, DriftScenario, TerminalCluster

SECONDS_PER_HOUR = 3_600
SECONDS_PER_DAY = 86_400
CARD_TESTING_SCENARIO = 4
TERMINAL_CLUSTER_SCENARIO = 5


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
    stream: tuple[int, ...],
    days: range,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Label the terminal clusters, then add the card-testing rows of `days` (those `tx` holds) in time order;
    returns (tx, scenario labels)."""
    extra = []
    for k, scenario in enumerate(drift):
        rng = np.random.default_rng([*stream, k])
        if isinstance(scenario, TerminalCluster):
            _label_terminal_cluster(rng, scenario, tx, labels, terminal_xy)
        elif isinstance(scenario, CardTesting) and (window := _active_days(scenario, days)):
            extra.append(_card_testing_rows(rng, scenario, int(tx["n_customers"]), len(terminal_xy), window))
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


def _active_days(scenario: CardTesting, days: range) -> range:
    """The days of `days` (a step-1 range) within the scenario's window."""
    return range(max(scenario.start_day, days.start), min(scenario.start_day + scenario.days, days.stop))


def _card_testing_rows(
    rng: np.random.Generator, scenario: CardTesting, n_customers: int, n_terminals: int, window: range
) -> dict[str, np.ndarray]:
    """The tests' rows (unsorted): each tested card makes `tx_per_card` transactions on the night it is tested."""
    days = np.arange(window.start, window.stop)
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
