"""The prequential proof: `online.eval.days` days after the data replayed, test-then-train, side by side.

`replay_stream` plays the days as the feedback loop would: the simulator continues the data's world (the drift of
`online.eval.drift` applied from the first replayed day); each day's transactions get the features the service
would serve (the polars engine, counting the labels known before each transaction, investigations included) and
the champion's score (it serves; the others run beside it, as the shadow or an A/B arm would); at the day's end the
`feedback.investigations_per_day` riskiest cards are investigated (their transactions of the last
`investigation_lookback_days` days labelled then); every other label becomes known `label_delay_days` after its
transaction. A label is known once, at the earlier of the two.

`prequential` walks the stream hour by hour: the labels known by the hour's start are learned first (micro-batches
of `online.update_every` at most), then the hour's transactions are scored by every model. A transaction is
therefore always scored before any label of it (known after it happened) can be learned, and a label is never
learned before its `known_at`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import numpy as np
import polars as pl

from fraud_detection.evaluation.metrics import auc_roc, average_precision, card_precision_at_k
from fraud_detection.features import polars_engine
from fraud_detection.features.definitions import MICROS_PER_DAY
from fraud_detection.features.matrix import feature_matrix
from fraud_detection.models.scorer import FraudScorer
from fraud_detection.online.learner import Examples, Report, trees_proba
from fraud_detection.online.params import EvaluationParams, Poisoning
from fraud_detection.simulation.params import AmountInflation
from fraud_detection.simulation.simulator import SimulationConfig, simulate_continuation

log = logging.getLogger(__name__)
MICROS_PER_HOUR = MICROS_PER_DAY // 24
METRICS = ("average_precision", "card_precision_at_100", "auc_roc")
COLUMNS = ("transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount", "tx_fraud")


@dataclass(frozen=True)
class Stream:
    """The replayed transactions (time order: ids, times, cards, labels, `day` from 0, `drifted`), their served
    features (`x`) and the champion trees' probabilities; the label events (`transaction_id`, `tx_fraud`,
    `known_us`, `investigation`) in `known_us` order; the warm-up rows (features and labels known before the
    replay)."""

    transactions: pl.DataFrame
    x: np.ndarray
    trees: np.ndarray
    labels: pl.DataFrame
    warmup_x: np.ndarray
    warmup_y: np.ndarray
    first_day: str


class Model(Protocol):
    report: Report | None

    def predict(self, x: np.ndarray, trees: np.ndarray) -> np.ndarray: ...

    def learn(self, batch: Examples, now_us: int) -> None: ...


def replay_stream(history: pl.DataFrame, champion: FraudScorer, config: SimulationConfig, evaluation: EvaluationParams,
                  label_delay_days: int, investigations_per_day: int, lookback_days: int,
                  progress: Callable[[str], None] = log.info) -> Stream:  # fmt: skip
    """The replayed days after `history` (the ingested transactions), as the module's doc describes."""
    last = history["tx_datetime"].max().date()
    first_day = (last - config.start_date).days + 1
    shifted = tuple(s.model_copy(update={"start_day": s.start_day + first_day}) for s in evaluation.drift)
    world = dataclasses.replace(config, drift=shifted)
    days = range(first_day, first_day + evaluation.days)
    new = simulate_continuation(world, days, int(history["transaction_id"].max()) + 1)
    new = new.with_columns(day=(pl.col("tx_datetime").dt.date() - config.start_date).dt.total_days() - first_day)
    since = last - timedelta(days=evaluation.history_days - 1)
    past = history.filter(pl.col("tx_datetime").dt.date() >= since).select(COLUMNS)
    delay_us = label_delay_days * MICROS_PER_DAY
    served, events = [], pl.DataFrame(schema=_EVENT_SCHEMA)
    warmup = None
    for day in range(evaluation.days):
        today = new.filter(pl.col("day") == day)
        seen = pl.concat([past, new.filter(pl.col("day") <= day).select(COLUMNS)])
        known_at = pl.from_epoch("known_us", "us").dt.replace_time_zone("UTC")
        tables = polars_engine.state_tables(seen, label_delay_days, events.with_columns(known_at=known_at))
        if warmup is None:  # the data's own features (no replayed label is known before the replay)
            warmup = polars_engine.transaction_features(past, tables)
        features = polars_engine.transaction_features(today.select(COLUMNS), tables)
        x = feature_matrix(features)
        scored = today.with_columns(score=pl.Series(champion.predict_proba(x)))
        served.append((scored, x))
        day_end_us = _day_us(config, first_day + day + 1)
        done = pl.concat([frame for frame, _ in served])
        events = pl.concat([events, _investigations(done, scored, events, day_end_us, investigations_per_day,
                                                    lookback_days, delay_us)])  # fmt: skip
        progress(f"replay day {day + 1}/{evaluation.days}: {today.height:,} transactions, "
                 f"{int(today['tx_fraud'].sum())} frauds, {events.height:,} investigation labels so far")  # fmt: skip
    transactions = pl.concat([frame for frame, _ in served]).with_columns(tx_us=pl.col("tx_datetime").dt.epoch("us"))
    x = np.concatenate([matrix for _, matrix in served])
    drifted = _drifted_days(evaluation, evaluation.days)
    transactions = transactions.with_columns(drifted=pl.col("day").is_in(sorted(drifted)))
    delayed = transactions.filter(~pl.col("transaction_id").is_in(events["transaction_id"].implode())).select(
        "transaction_id", pl.col("tx_fraud").cast(pl.Int8), known_us=pl.col("tx_us") + delay_us,
        investigation=pl.lit(False))  # fmt: skip
    labels = pl.concat([events, delayed]).sort("known_us", "transaction_id")
    known = pl.col("tx_datetime").dt.epoch("us") + delay_us <= _day_us(config, first_day)
    recent = pl.col("tx_datetime").dt.date() > last - timedelta(days=evaluation.river_warmup_days + label_delay_days)
    warm = warmup.filter(known & recent)
    return Stream(transactions, x, trees_proba(champion, x), labels, feature_matrix(warm), warm["tx_fraud"].to_numpy(),
                  str(last + timedelta(days=1)))  # fmt: skip


_EVENT_SCHEMA = {"transaction_id": pl.Int64, "tx_fraud": pl.Int8, "known_us": pl.Int64, "investigation": pl.Boolean}


def _investigations(done: pl.DataFrame, today: pl.DataFrame, events: pl.DataFrame, day_end_us: int, per_day: int,
                    lookback_days: int, delay_us: int) -> pl.DataFrame:  # fmt: skip
    """The day's `per_day` riskiest cards (highest served score; ties by card id): their transactions of the last
    `lookback_days` days whose label is not known yet, labelled at the day's end."""
    if per_day == 0:
        return pl.DataFrame(schema=_EVENT_SCHEMA)
    cards = (today.group_by("customer_id").agg(pl.col("score").max())
             .sort("score", "customer_id", descending=[True, False]).head(per_day)["customer_id"])  # fmt: skip
    tx_us = pl.col("tx_datetime").dt.epoch("us")
    found = done.filter(
        pl.col("customer_id").is_in(cards.implode())
        & (tx_us >= day_end_us - lookback_days * MICROS_PER_DAY)
        & (tx_us + delay_us > day_end_us)  # its delayed label not known yet
        & ~pl.col("transaction_id").is_in(events["transaction_id"].implode())
    )
    return found.sort("transaction_id").select(
        "transaction_id", pl.col("tx_fraud").cast(pl.Int8), known_us=pl.lit(day_end_us, pl.Int64),
        investigation=pl.lit(True))  # fmt: skip


def _drifted_days(evaluation: EvaluationParams, days: int) -> set[int]:
    """The replayed days on which a drift scenario acts."""
    drifted: set[int] = set()
    for scenario in evaluation.drift:
        end = days if isinstance(scenario, AmountInflation) else scenario.start_day + scenario.days
        drifted.update(range(scenario.start_day, min(end, days)))
    return drifted


def _day_us(config: SimulationConfig, day: int) -> int:
    start = config.start_date.toordinal() - 719_163  # days from 1970-01-01
    return (start + day) * MICROS_PER_DAY


def poisoned(labels: pl.DataFrame, first_day_us: int, poison: Poisoning) -> tuple[pl.DataFrame, int]:
    """The label events with `poison.fraction` of those known on replayed day `poison.day` flipped; and how many."""
    start = first_day_us + poison.day * MICROS_PER_DAY
    on_day = (pl.col("known_us") >= start) & (pl.col("known_us") < start + MICROS_PER_DAY)
    rng = np.random.default_rng(poison.seed)
    hit = np.asarray(labels.select(on_day).to_series()) & (rng.random(labels.height) < poison.fraction)
    flipped = labels.with_columns(
        tx_fraud=pl.when(pl.Series(hit)).then(1 - pl.col("tx_fraud")).otherwise(pl.col("tx_fraud")).cast(pl.Int8)
    )
    return flipped, int(hit.sum())


def prequential(stream: Stream, models: dict[str, Model], labels: pl.DataFrame | None = None,
                update_every: int = 1000) -> dict[str, np.ndarray]:  # fmt: skip
    """Each model's score of every replayed transaction, test-then-train (see the module's doc); `labels`: the
    events to learn (default the stream's)."""
    labels = stream.labels if labels is None else labels
    tx_us = stream.transactions["tx_us"].to_numpy()
    index = {t: i for i, t in enumerate(stream.transactions["transaction_id"].to_list())}
    rows = np.array([index.get(t, -1) for t in labels["transaction_id"].to_list()], dtype=np.int64)
    known = labels["known_us"].to_numpy()
    keep = rows >= 0
    rows, known = rows[keep], known[keep]
    y = labels["tx_fraud"].to_numpy()[keep]
    investigation = labels["investigation"].to_numpy()[keep]
    scores = {name: np.empty(len(tx_us)) for name in models}
    start = tx_us.min() - tx_us.min() % MICROS_PER_HOUR
    hours = np.arange(start, tx_us.max() + 1, MICROS_PER_HOUR)  # up to the last transaction's hour
    learned_until = 0  # labels learned: known[:learned_until] (sorted by known_us)
    for hour in hours:
        due = int(np.searchsorted(known, hour, side="right"))
        for begin in range(learned_until, due, update_every):
            end = min(begin + update_every, due)
            part = rows[begin:end]
            batch = Examples(stream.x[part], y[begin:end], stream.transactions["transaction_id"].to_numpy()[part],
                             investigation[begin:end], known[begin:end], stream.trees[part])  # fmt: skip
            for model in models.values():
                model.learn(batch, int(hour))
        learned_until = due
        now = slice(*np.searchsorted(tx_us, [hour, hour + MICROS_PER_HOUR]))
        if now.stop > now.start:
            for name, model in models.items():
                scores[name][now] = model.predict(stream.x[now], stream.trees[now])
    return scores


def quality(stream: Stream, scores: np.ndarray, top_k: int) -> dict[str, Any]:
    """AUC ROC, average precision and card precision@`top_k` over every replayed day (`all`), the drifted days
    (`drifted`, None without drift) and each day (`daily`)."""
    frame = stream.transactions.select("tx_datetime", "customer_id", "tx_fraud", "day", "drifted").with_columns(
        score=pl.Series(scores))  # fmt: skip
    daily = [{"day": str(part["tx_datetime"][0].date()), "drifted": bool(part["drifted"][0]), **_figures(part, top_k)}
             for part in frame.partition_by("day", maintain_order=True)]  # fmt: skip
    drifted = frame.filter(pl.col("drifted"))
    return {"all": _figures(frame, top_k), "drifted": _figures(drifted, top_k) if drifted.height else None,
            "daily": daily}  # fmt: skip


def _figures(frame: pl.DataFrame, top_k: int) -> dict[str, float | None]:
    labels, scores = frame["tx_fraud"].to_numpy(), frame["score"].to_numpy()
    if not 0 < labels.sum() < len(labels):
        return dict.fromkeys(METRICS)
    return {"average_precision": round(average_precision(labels, scores), 6),
            f"card_precision_at_{top_k}": round(card_precision_at_k(frame, top_k), 6),
            "auc_roc": round(auc_roc(labels, scores), 6)}  # fmt: skip
