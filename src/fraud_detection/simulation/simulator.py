"""Vectorised generator of card transactions with three fraud scenarios.

The generative rules (handbook, section 3.2):
- customers and terminals sit uniformly on a 100 x 100 grid; a customer uses the terminals within `radius`;
- a customer spends `mean_amount ~ U(5, 100)` with `std = mean / 2`, and makes `Poisson(U(0, 4))` transactions a day,
  at a time of day ~ N(12 h, 20,000 s) (draws outside the day are discarded); negative amounts are redrawn from
  U(0, 2 * mean);
- scenario 1: every amount above 220 is fraud;
- scenario 2: every day, 2 terminals are compromised; their transactions in the next 28 days are fraud;
- scenario 3: every day, 3 customers are compromised; a third of their transactions in the next 14 days are
  multiplied by 5 and are fraud.
Later scenarios overwrite earlier ones, as in the handbook. The whole run is driven by one seeded numpy Generator.

Optional drift (`simulate.drift`, see drift.py): amount inflation from a day (applied before the labels), card
testing (scenario 4) and a compromised terminal cluster (scenario 5). Drift draws from its own child generators, so
with no drift configured the output is the handbook process's, bit for bit.

`simulate_continuation` plays days after the run (the traffic of `fraud-detection traffic run`): the same customers,
terminals, scenarios and drift, each day drawn from its own generators, so a day is the same whichever days are asked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
import polars as pl
from scipy.spatial import cKDTree

from fraud_detection.simulation.drift import add_drift_frauds, inflate_amounts
from fraud_detection.simulation.params import GRID_SIZE, DriftScenario, FraudScenarios, SimulateParams

log = logging.getLogger(__name__)

SECONDS_PER_DAY = 86_400
NEAR_MARGIN = 1 + 1e-9  # the k-d tree proposes pairs up to this much beyond the radius; the exact test decides

# A continued day draws from default_rng([seed, CONTINUATION, day, stream]). numpy's seeding ignores trailing zeros
# ([s, k] is [s, k, 0]), so the streams count from 1 and none is another padded with zeros.
CONTINUATION = 0x636F6E74  # "cont"
TRANSACTIONS_STREAM, COMPROMISES_STREAM, DRIFT_STREAM = 1, 2, 3
_DAY_COLUMNS = {"seconds": np.int64, "day": np.int64, "customer": np.int64, "terminal": np.int64,
                "amount": np.float64, "scenario": np.int8}  # fmt: skip

TRANSACTION_COLUMNS = (
    "transaction_id",
    "tx_datetime",
    "customer_id",
    "terminal_id",
    "tx_amount",
    "tx_fraud",
    "tx_fraud_scenario",
)


@dataclass(frozen=True)
class SimulationConfig:
    """What the simulator draws: params.yaml `simulate` with its profile resolved to a size."""

    n_customers: int
    n_terminals: int
    n_days: int
    start_date: date
    radius: float
    seed: int
    fraud: FraudScenarios
    drift: tuple[DriftScenario, ...]

    @classmethod
    def from_params(cls, params: SimulateParams) -> SimulationConfig:
        size = params.size
        return cls(size.n_customers, size.n_terminals, size.n_days, params.start_date, params.radius, params.seed,
                   params.fraud, tuple(params.drift))  # fmt: skip


@dataclass(frozen=True, eq=False)
class CompromiseSchedule:
    """The terminals (scenario 2) and the customers (scenario 3) hit each day of the run: row d holds day d's."""

    terminals: np.ndarray  # (n_days, terminals_per_day) terminal ids
    customers: np.ndarray  # (n_days, customers_per_day) customer ids

    def as_frame(self) -> pl.DataFrame:
        """One row per hit: `day` (0-based), `scenario` (2: a terminal, 3: a customer), `entity_id`, in draw order."""
        parts = ((self.terminals, 2), (self.customers, 3))
        return pl.DataFrame({
            "day": np.concatenate([np.repeat(np.arange(len(ids)), ids.shape[1]) for ids, _ in parts]),
            "scenario": np.concatenate([np.full(ids.size, scenario, dtype=np.int8) for ids, scenario in parts]),
            "entity_id": np.concatenate([ids.ravel() for ids, _ in parts]).astype(np.int64),
        })  # fmt: skip

    @classmethod
    def from_frame(cls, frame: pl.DataFrame, config: SimulationConfig) -> CompromiseSchedule:
        """The schedule `as_frame` wrote; a ValueError names what does not fit `config`'s run."""
        rules, hits = config.fraud, {}
        for scenario, per_day, n in ((2, rules.terminals_per_day, config.n_terminals),
                                     (3, rules.customers_per_day, config.n_customers)):  # fmt: skip
            rows = frame.filter(pl.col("scenario") == scenario)
            days, ids, shape = rows["day"].to_numpy(), rows["entity_id"].to_numpy(), (config.n_days, min(per_day, n))
            if len(ids) != shape[0] * shape[1] or (days != np.repeat(np.arange(shape[0]), shape[1])).any():
                raise ValueError(f"compromise schedule: {len(ids)} scenario-{scenario} rows; expected {shape[1]} a day "
                                 f"for days 0..{shape[0] - 1} (were params.yaml simulate changed after the simulate "
                                 "stage ran? `dvc repro simulate`)")  # fmt: skip
            outside = ids[(ids < 0) | (ids >= n)]
            if len(outside):
                raise ValueError(
                    f"compromise schedule: scenario-{scenario} entity_id {outside[0]}; expected 0..{n - 1}"
                )
            hits[scenario] = ids.reshape(shape)
        return cls(hits[2], hits[3])


@dataclass(frozen=True, eq=False)
class _World:
    """The run's customers and terminals, and its generator once it has drawn them."""

    rng: np.random.Generator
    customers: dict[str, np.ndarray]
    terminal_xy: np.ndarray
    reachable: np.ndarray
    offsets: np.ndarray


def simulate_transactions(config: SimulationConfig) -> pl.DataFrame:
    """Generate the transactions table, sorted by time, with ids 0..n-1 in that order."""
    return simulate_run(config)[0]


def simulate_run(config: SimulationConfig) -> tuple[pl.DataFrame, CompromiseSchedule]:
    """The transactions table and the compromises drawn for it (what `simulate_continuation` carries over)."""
    world = _world(config)
    tx = _draw_transactions(world.rng, world.customers, world.reachable, world.offsets, config.n_days)
    inflate_amounts(tx, config.drift)
    scenario, schedule = _add_frauds(world.rng, tx, config)
    days = range(config.n_days)
    tx, scenario = add_drift_frauds(tx, scenario, config.drift, world.terminal_xy, (config.seed,), days)
    fraud = (scenario > 0).astype(np.int8)
    log.info("simulated %d transactions, %.3f %% fraud", len(fraud), 100 * fraud.mean() if len(fraud) else 0)
    return _to_frame(tx, fraud, scenario, config.start_date), schedule


def compromise_schedule(config: SimulationConfig) -> CompromiseSchedule:
    """The terminals and customers `simulate_transactions(config)` compromises each day, replayed from its seed
    (most of the run's draws: `simulate_run` gives it for free)."""
    world = _world(config)
    tx = _draw_transactions(world.rng, world.customers, world.reachable, world.offsets, config.n_days)
    return _add_frauds(world.rng, tx, config)[1]  # the draws do not depend on the amounts: no inflation needed


def simulate_continuation(config: SimulationConfig, days: range, first_transaction_id: int,
                          schedule: CompromiseSchedule | None = None) -> pl.DataFrame:  # fmt: skip
    """The transactions of `days` (0-based, each >= n_days) after the run of `config`, in its world: sorted by time,
    with ids from `first_transaction_id` in that order. Compromises of the run's last days carry over: from
    `schedule` (the run's, as `simulate_run` gave it) or replayed from the seed."""
    early = [day for day in days if day < config.n_days]
    if early:
        raise ValueError(f"simulate_continuation: day {early[0]} is in the simulated run; "
                         f"expected days >= n_days ({config.n_days})")  # fmt: skip
    world = _world(config)
    hits = _hits_reaching(config, days, schedule)
    parts = [_continued_day(config, world, hits, day) for day in sorted(days)]
    tx = {key: np.concatenate([part[key] for part in parts]) for key in _DAY_COLUMNS} if parts else _no_rows()
    fraud = (tx["scenario"] > 0).astype(np.int8)
    log.info("continued %d days: %d transactions, %d frauds", len(parts), len(fraud), fraud.sum())
    return _to_frame(tx, fraud, tx["scenario"], config.start_date, first_transaction_id)


def _world(config: SimulationConfig) -> _World:
    """The first draws of the run: the customers' profiles, then the terminals' positions."""
    rng = np.random.default_rng(config.seed)
    customers = _customer_profiles(rng, config.n_customers)
    terminal_xy = rng.uniform(0, GRID_SIZE, size=(config.n_terminals, 2))
    reachable, offsets = _reachable_terminals(customers["xy"], terminal_xy, config.radius)
    return _World(rng, customers, terminal_xy, reachable, offsets)


def _customer_profiles(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    xy = rng.uniform(0, GRID_SIZE, size=(n, 2))
    mean_amount = rng.uniform(5, 100, size=n)
    return {
        "xy": xy,
        "mean_amount": mean_amount,
        "std_amount": mean_amount / 2,
        "mean_nb_tx_per_day": rng.uniform(0, 4, size=n),
    }


def _reachable_terminals(
    customer_xy: np.ndarray, terminal_xy: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """Terminals within `radius` of each customer (squared distance < radius**2), as a CSR pair (flat terminal ids in
    ascending order per customer, per-customer offsets). A k-d tree proposes the pairs a hair beyond the radius; the
    squared distance then decides each, so the pairs are those of a comparison of every customer with every
    terminal, in a fraction of its time (the default world: 5,000 x 10,000 pairs)."""
    if not len(customer_xy) or not len(terminal_xy):
        return np.zeros(0, dtype=np.int64), np.zeros(len(customer_xy) + 1, dtype=np.int64)
    near = cKDTree(terminal_xy).query_ball_point(customer_xy, radius * NEAR_MARGIN, return_sorted=True)
    counts = np.fromiter(map(len, near), dtype=np.int64, count=len(near))
    rows = np.repeat(np.arange(len(customer_xy)), counts)
    cols = np.fromiter((t for terminals in near for t in terminals), dtype=np.int64, count=int(counts.sum()))
    within = ((customer_xy[rows] - terminal_xy[cols]) ** 2).sum(axis=1) < radius**2
    counts = np.bincount(rows[within], minlength=len(customer_xy))
    return cols[within], np.concatenate([[0], np.cumsum(counts)])


def _draw_transactions(
    rng: np.random.Generator,
    customers: dict[str, np.ndarray],
    reachable: np.ndarray,
    offsets: np.ndarray,
    n_days: int,
) -> dict[str, np.ndarray]:
    """Draw every (day, customer) transaction count, then times, amounts and terminals for all at once."""
    n_customers = len(customers["mean_amount"])
    counts = rng.poisson(customers["mean_nb_tx_per_day"], size=(n_days, n_customers))
    day = np.repeat(np.repeat(np.arange(n_days), n_customers), counts.ravel())
    customer = np.repeat(np.tile(np.arange(n_customers), n_days), counts.ravel())
    seconds_in_day = rng.normal(SECONDS_PER_DAY / 2, 20_000, size=len(day)).astype(np.int64)
    mean, std = customers["mean_amount"][customer], customers["std_amount"][customer]
    amount = rng.normal(mean, std)
    redraw = rng.uniform(0, 2 * mean)
    amount = np.round(np.where(amount < 0, redraw, amount), 2)
    n_reachable = offsets[customer + 1] - offsets[customer]
    pick = (rng.random(len(day)) * np.maximum(n_reachable, 1)).astype(np.int64)
    terminal = (
        reachable[np.minimum(offsets[customer] + pick, max(len(reachable) - 1, 0))]
        if len(reachable)
        else np.zeros(len(day), dtype=np.int64)
    )
    keep = (seconds_in_day > 0) & (seconds_in_day < SECONDS_PER_DAY) & (n_reachable > 0)
    seconds = day * SECONDS_PER_DAY + seconds_in_day
    order = np.argsort(seconds[keep], kind="stable")
    return {
        "seconds": seconds[keep][order],
        "day": day[keep][order],
        "customer": customer[keep][order],
        "terminal": terminal[keep][order],
        "amount": amount[keep][order],
        "n_customers": np.int64(n_customers),
    }


def _add_frauds(
    rng: np.random.Generator, tx: dict[str, np.ndarray], config: SimulationConfig
) -> tuple[np.ndarray, CompromiseSchedule]:
    """Each transaction's scenario (0: genuine), labelled in the handbook's order (scenario 3 also inflates amounts),
    and the compromises drawn."""
    rules = config.fraud
    scenario = np.where(tx["amount"] > rules.amount_threshold, 1, 0).astype(np.int8)

    terminal_hits = [_hit(rng, config.n_terminals, rules.terminals_per_day) for _ in range(config.n_days)]
    compromised = np.zeros((config.n_terminals, config.n_days), dtype=bool)
    for day, hit in enumerate(terminal_hits):
        compromised[hit, day : day + rules.terminal_compromise_days] = True
    scenario[compromised[tx["terminal"], tx["day"]]] = 2

    customer_hits = []
    by_customer = np.argsort(tx["customer"], kind="stable")
    starts = np.searchsorted(tx["customer"][by_customer], np.arange(config.n_customers + 1))
    for day in range(config.n_days):
        customer_hits.append(hit := _hit(rng, config.n_customers, rules.customers_per_day))
        rows = np.concatenate([by_customer[starts[c] : starts[c + 1]] for c in hit])
        rows = rows[(tx["day"][rows] >= day) & (tx["day"][rows] < day + rules.customer_compromise_days)]
        chosen = rng.choice(rows, size=int(len(rows) * rules.customer_fraud_fraction), replace=False)
        tx["amount"][chosen] = np.round(tx["amount"][chosen] * rules.customer_amount_multiplier, 2)
        scenario[chosen] = 3
    return scenario, CompromiseSchedule(np.stack(terminal_hits), np.stack(customer_hits))


def _hit(rng: np.random.Generator, n: int, per_day: int) -> np.ndarray:
    """One day's compromised ids (terminals or customers)."""
    return rng.choice(n, size=min(per_day, n), replace=False)


def _hits_reaching(config: SimulationConfig, days: range,
                   schedule: CompromiseSchedule | None) -> dict[int, tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    """(terminals, customers) hit on each day whose compromises can still run on one of `days`: the run's draws
    before n_days, after it each day's own compromise generator (so a day's hits never need its transactions)."""
    if not days:
        return {}
    rules = config.fraud
    longest = max(rules.terminal_compromise_days, rules.customer_compromise_days)
    span = range(max(min(days) - longest + 1, 0), max(days) + 1)
    run = (schedule or compromise_schedule(config)) if span.start < config.n_days else None
    hits = {}
    for day in span:
        if run is not None and day < config.n_days:
            hits[day] = run.terminals[day], run.customers[day]
            continue
        rng = np.random.default_rng([config.seed, CONTINUATION, day, COMPROMISES_STREAM])
        terminals = _hit(rng, config.n_terminals, rules.terminals_per_day)
        hits[day] = terminals, _hit(rng, config.n_customers, rules.customers_per_day)
    return hits


def _continued_day(
    config: SimulationConfig, world: _World, hits: dict[int, tuple[np.ndarray, np.ndarray]], day: int
) -> dict[str, np.ndarray]:
    """One continued day's transactions, time-sorted, with their scenario ("scenario")."""
    rng = np.random.default_rng([config.seed, CONTINUATION, day, TRANSACTIONS_STREAM])
    tx = _draw_transactions(rng, world.customers, world.reachable, world.offsets, 1)
    tx["day"] += day
    tx["seconds"] += day * SECONDS_PER_DAY
    inflate_amounts(tx, config.drift)
    scenario = _continued_frauds(rng, tx, config, hits, day)
    stream = (config.seed, CONTINUATION, day, DRIFT_STREAM)
    tx, scenario = add_drift_frauds(tx, scenario, config.drift, world.terminal_xy, stream, range(day, day + 1))
    return {**tx, "scenario": scenario}


def _continued_frauds(
    rng: np.random.Generator,
    tx: dict[str, np.ndarray],
    config: SimulationConfig,
    hits: dict[int, tuple[np.ndarray, np.ndarray]],
    day: int,
) -> np.ndarray:
    """`_add_frauds` for one continued day: a compromised customer's transaction is fraud with probability
    `customer_fraud_fraction` (the run picks that share of a whole window's, which on one day rounds to 0)."""
    rules = config.fraud
    scenario = np.where(tx["amount"] > rules.amount_threshold, 1, 0).astype(np.int8)
    terminals = np.concatenate([hits[hit_day][0] for hit_day in _window(day, rules.terminal_compromise_days)])
    scenario[np.isin(tx["terminal"], terminals)] = 2
    customers = np.concatenate([hits[hit_day][1] for hit_day in _window(day, rules.customer_compromise_days)])
    chosen = np.isin(tx["customer"], customers) & (rng.random(len(scenario)) < rules.customer_fraud_fraction)
    tx["amount"][chosen] = np.round(tx["amount"][chosen] * rules.customer_amount_multiplier, 2)
    scenario[chosen] = 3
    return scenario


def _window(day: int, compromise_days: int) -> range:
    """The days whose compromises are still running on `day`."""
    return range(max(day - compromise_days + 1, 0), day + 1)


def _no_rows() -> dict[str, np.ndarray]:
    return {key: np.zeros(0, dtype=dtype) for key, dtype in _DAY_COLUMNS.items()}


def _to_frame(
    tx: dict[str, np.ndarray], fraud: np.ndarray, scenario: np.ndarray, start_date: date, first_id: int = 0
) -> pl.DataFrame:
    origin = datetime(start_date.year, start_date.month, start_date.day, tzinfo=UTC)
    return pl.DataFrame(
        {
            "transaction_id": np.arange(first_id, first_id + len(fraud), dtype=np.int64),
            "tx_datetime": pl.Series(tx["seconds"] * 1_000_000, dtype=pl.Int64)
            .cast(pl.Datetime("us"))
            .dt.replace_time_zone("UTC")
            + (origin - datetime(1970, 1, 1, tzinfo=UTC)),
            "customer_id": tx["customer"].astype(np.int64),
            "terminal_id": tx["terminal"].astype(np.int64),
            "tx_amount": tx["amount"].astype(np.float64),
            "tx_fraud": fraud,
            "tx_fraud_scenario": scenario,
        }
    )
