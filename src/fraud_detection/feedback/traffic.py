"""The world after the data's last day, as a command (`fraud-detection traffic run`).

Each new day the simulator's continuation draws (the same customers, terminals and fraud scenarios, `simulate.drift`
applied) are sent to the service in time order, in chunks: in process through the service's own detector, or over
HTTP to `/predict_batch`; at full speed or paced (`speed` simulated seconds per wall second). Outcomes follow:
- `delayed`: every transaction's label becomes known `features.label_delay_days` after it;
- `investigation`: at each day's end the `feedback.investigations_per_day` cards with the highest risk served that
  day are investigated; their transactions of the last `feedback.investigation_lookback_days` days get their labels
  then (those not known yet).
A label is published once, when it becomes known, to the label stream. The online store is kept current here as the
service's feature pipeline would: the online updater writes the daily rows at each day's start, and the label
consumer applies the stream's events (`consumer.py`). A finished day's transactions go to `traffic_transactions`,
which the ingest stage reads beside the simulator's output, so the next `dvc repro` trains on them.

Progress is stored after every chunk (`traffic_state`: the next day, the last transaction sent of it, the moment up
to which labels are published): a run stopped at any point resumes there, and sends no transaction twice.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from fraud_detection.features.definitions import EPOCH, MICROS_PER_DAY
from fraud_detection.features.online import updater_from_history
from fraud_detection.feedback import TrafficError
from fraud_detection.feedback.consumer import CONSUMER_GROUP, LabelConsumer, OutcomeApplier
from fraud_detection.feedback.labels import LabelStream, events_frame, label_event
from fraud_detection.runtime.collector import long_lived_state
from fraud_detection.simulation.simulator import CompromiseSchedule, SimulationConfig, simulate_continuation

log = logging.getLogger(__name__)
TRANSACTION_FIELDS = ("transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount")


@dataclass
class TrafficState:
    """Where the world stands: `next_day` (0-based simulator day) is the first day not finished; of it, every
    transaction up to `last_sent` was sent; labels known up to `labels_through_us` are published."""

    next_day: int
    last_sent: int | None
    labels_through_us: int

    @classmethod
    def of(cls, saved: dict[str, Any] | None, first_day: int, start_us: int) -> TrafficState:
        if not saved:
            return cls(first_day, None, start_us)
        return cls(int(saved["next_day"]), saved["last_sent"], int(saved["labels_through_us"]))

    def as_json(self) -> dict[str, Any]:
        return {"next_day": self.next_day, "last_sent": self.last_sent, "labels_through_us": self.labels_through_us}


@dataclass
class Summary:
    sent: int = 0
    decisions: Counter = field(default_factory=Counter)
    degraded: int = 0
    labels: Counter = field(default_factory=Counter)  # by source
    days: list[str] = field(default_factory=list)
    seconds: float = 0.0  # the whole run
    setup_seconds: float = 0.0  # the online updater built from the data, the new days drawn
    send_seconds: float = 0.0  # waiting for the service's answers
    rollover_seconds: float = 0.0  # each day's start: every entity's daily row computed and written

    def as_json(self) -> dict[str, Any]:
        rate = self.sent / self.seconds if self.seconds else 0.0
        return {"days": self.days, "sent": self.sent, "decisions": dict(sorted(self.decisions.items())),
                "degraded": self.degraded, "labels_published": dict(sorted(self.labels.items())),
                "seconds": round(self.seconds, 3), "transactions_per_second": round(rate, 1),
                "setup_seconds": round(self.setup_seconds, 3), "send_seconds": round(self.send_seconds, 3),
                "rollover_seconds": round(self.rollover_seconds, 3)}  # fmt: skip


Send = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]  # transactions -> answers (Prediction fields)


@dataclass
class World:
    """What a run needs: the simulator's configuration, the data so far, where answers and outcomes go."""

    config: SimulationConfig
    history: pl.DataFrame  # every transaction before the run (ingested data and earlier traffic days)
    traffic_days: pl.DataFrame  # the earlier traffic days' transactions (a part of `history`), for their labels
    label_delay_days: int
    investigations_per_day: int
    lookback_days: int
    consume_batch: int
    labels: LabelStream
    store_sink: Any  # OnlineUpdaterSink (or None: nothing is written to a store)
    save_day: Callable[[str, pl.DataFrame], None]
    save_state: Callable[[dict[str, Any]], None]
    logged: Callable[[], pl.DataFrame]  # the prediction log as a table (`prediction_table`)
    schedule: CompromiseSchedule | None = None  # the run's compromises (None: replayed from the seed)
    chunk: int = 2000


def run_traffic(world: World, state: TrafficState, days: int, send: Send, speed: float | None = None,
                progress: Callable[[str], None] = print,
                after_day: Callable[[str], str | None] | None = None) -> Summary:  # fmt: skip
    """Play `days` days from where `state` stands; returns what was sent and published. `after_day` runs after
    each finished day (the rollout's tick); what it returns is printed."""
    started, play = time.perf_counter(), _Play.start(world, state)
    clock, played = _Pacer(speed), range(state.next_day, state.next_day + days)
    first_id = int(world.history["transaction_id"].max()) + 1
    continued = simulate_continuation(world.config, played, first_id, world.schedule)
    continued = continued.with_columns(_day=pl.col("tx_datetime").dt.date())
    play.summary.setup_seconds = time.perf_counter() - started
    for day in played:
        day_us = _day_start_us(world.config, day)
        tx = continued.filter(pl.col("_day") == world.config.start_date + timedelta(days=day)).drop("_day")
        rest, sent_before, risk = play.start_day(day_us, tx)
        for chunk in _chunks(rest, world.chunk, speed):
            clock.wait_until(chunk["tx_datetime"][0])
            play.chunk(chunk, send, risk)
        whole_day = rest if sent_before is None else pl.concat([sent_before, rest], how="vertical_relaxed")
        investigated = play.finish_day(day, day_us, whole_day, risk)
        progress(f"{_day_name(world.config, day)}: {whole_day.height:,} transactions, "
                 f"{investigated:,} investigation labels; {play.summary.sent:,} sent so far")  # fmt: skip
        said = after_day(_day_name(world.config, day)) if after_day else None
        if said:
            progress(f"  {said}")
    play.summary.seconds = time.perf_counter() - started
    return play.summary


@dataclass
class _Play:
    """A run's moving parts: the online store's updater and label consumer, the labels published and due."""

    world: World
    state: TrafficState
    applier: OutcomeApplier
    labelled: set[int]  # transactions whose label was published
    outstanding: deque  # delayed labels not yet published: (known_us, transaction_id, tx_fraud), in time order
    consumer: LabelConsumer | None = None
    summary: Summary = field(default_factory=Summary)

    @classmethod
    def start(cls, world: World, state: TrafficState) -> _Play:
        delay_us = world.label_delay_days * MICROS_PER_DAY
        published = events_frame(world.labels.events())
        with long_lived_state():
            updater, pending = updater_from_history(world.history, world.label_delay_days,
                                                    _day_start_us(world.config, state.next_day), published)  # fmt: skip
        labelled = set(published["transaction_id"].to_list())  # the stream is the record of what was published
        return cls(world, state, OutcomeApplier(updater, pending, world.store_sink), labelled,
                   _outstanding(world.history, labelled, delay_us, state.labels_through_us))  # fmt: skip

    @property
    def delay_us(self) -> int:
        return self.world.label_delay_days * MICROS_PER_DAY

    def start_day(self, day_us: int, tx: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame | None, dict[int, float]]:
        """The day's rows written; after a stop mid-day, what was sent before it taken as served. Returns the
        transactions to send, those sent before the stop (or None) and the cards' served risk so far."""
        rolling = time.perf_counter()
        self.applier.start_day(day_us // MICROS_PER_DAY)
        self.summary.rollover_seconds += time.perf_counter() - rolling
        if self.consumer is None:  # after the first day's rows: the consumer's labels may change them
            w = self.world
            self.consumer = LabelConsumer(w.labels, CONSUMER_GROUP, self.applier, w.consume_batch)
        last = self.state.last_sent
        sent_before = tx.filter(pl.col("transaction_id") <= last) if last is not None else None
        if sent_before is None or not sent_before.height:
            return tx, None, {}
        _add(self.applier, sent_before)
        self.outstanding.extend(_delayed(sent_before, self.delay_us))
        risk = _served_risk(self.world.logged(), sent_before)
        return tx.filter(pl.col("transaction_id") > last), sent_before, risk

    def chunk(self, chunk: pl.DataFrame, send: Send, risk: dict[int, float]) -> None:
        """The labels known by the chunk's last transaction published and applied, then the chunk sent."""
        world, state = self.world, self.state
        until_us = int(chunk["tx_datetime"][-1].timestamp() * 1_000_000)
        self.summary.labels["delayed"] += _publish_delayed(world.labels, self.outstanding, self.labelled, until_us)
        state.labels_through_us = max(state.labels_through_us, until_us)
        self.applier.release(until_us)  # early within the chunk is exact: a window counts a label only once known
        self.consumer.consume()
        sending = time.perf_counter()
        answers = send(chunk.select(TRANSACTION_FIELDS).to_dicts())
        self.summary.send_seconds += time.perf_counter() - sending
        _add(self.applier, chunk)
        self.outstanding.extend(_delayed(chunk, self.delay_us))
        _note(self.summary, risk, chunk, answers)
        state.last_sent = int(chunk["transaction_id"][-1])
        world.save_state(state.as_json())

    def finish_day(self, day: int, day_us: int, whole_day: pl.DataFrame, risk: dict[int, float]) -> int:
        """The day's last delayed labels and its investigations published and applied, the day saved; returns how
        many investigation labels it published."""
        world, state, summary = self.world, self.state, self.summary
        day_end_us = day_us + MICROS_PER_DAY
        summary.labels["delayed"] += _publish_delayed(world.labels, self.outstanding, self.labelled, day_end_us - 1)
        investigated = _investigate(whole_day, world, risk, self.labelled, day_end_us)
        world.labels.write(investigated)
        summary.labels["investigation"] += len(investigated)
        self.consumer.consume()
        world.save_day(_day_name(world.config, day), whole_day)
        world.traffic_days = pl.concat([world.traffic_days, whole_day.select(world.traffic_days.columns)])
        state.next_day, state.last_sent, state.labels_through_us = day + 1, None, day_end_us - 1
        world.save_state(state.as_json())
        summary.days.append(_day_name(world.config, day))
        return len(investigated)


def _day_start_us(config: SimulationConfig, day: int) -> int:
    start = datetime(config.start_date.year, config.start_date.month, config.start_date.day, tzinfo=UTC)
    return int(((start + timedelta(days=day)) - EPOCH).total_seconds()) * 1_000_000


def _day_name(config: SimulationConfig, day: int) -> str:
    return (config.start_date + timedelta(days=day)).isoformat()


def _us(frame: pl.DataFrame) -> pl.Series:
    return frame["tx_datetime"].dt.epoch("us")


def _add(applier: OutcomeApplier, frame: pl.DataFrame) -> None:
    columns = (frame[name].to_list() for name in ("transaction_id", "customer_id", "terminal_id"))
    applier.add_transactions(*columns, _us(frame).to_list(), frame["tx_amount"].to_list())


def _delayed(frame: pl.DataFrame, delay_us: int) -> Iterator[tuple[int, int, int]]:
    """(known_us, transaction_id, tx_fraud) of each transaction's delayed label, in time order."""
    known = (_us(frame) + delay_us).to_list()
    return zip(known, frame["transaction_id"].to_list(), frame["tx_fraud"].to_list(), strict=True)


def _outstanding(history: pl.DataFrame, labelled: set[int], delay_us: int, through_us: int) -> deque:
    """The delayed labels of transactions before the run not yet published (the data's last days, earlier traffic
    days), in time order."""
    recent = history.filter(pl.col("tx_datetime").dt.epoch("us") + delay_us > through_us)
    return deque(row for row in _delayed(recent, delay_us) if row[1] not in labelled)


def _publish_delayed(labels: LabelStream, outstanding: deque, labelled: set[int], until_us: int) -> int:
    """Publish the delayed labels known by `until_us` (unless an investigation published them first)."""
    events = []
    while outstanding and outstanding[0][0] <= until_us:
        known_us, transaction_id, fraud = outstanding.popleft()
        if transaction_id in labelled:
            continue
        labelled.add(transaction_id)
        events.append(label_event(transaction_id, fraud, EPOCH + timedelta(microseconds=known_us), "delayed"))
    labels.write(events)
    return len(events)


def _investigate(day: pl.DataFrame, world: World, risk: dict[int, float], labelled: set[int],
                 day_end_us: int) -> list[dict[str, Any]]:  # fmt: skip
    """The day's `investigations_per_day` riskiest cards (served risk; ties by card id): their transactions of the
    last `lookback_days` days not labelled yet, labelled at the day's end."""
    cards = sorted(risk, key=lambda card: (-risk[card], card))[: world.investigations_per_day]
    if not cards:
        return []
    since = EPOCH + timedelta(microseconds=day_end_us - world.lookback_days * MICROS_PER_DAY)
    earlier = world.traffic_days.filter(pl.col("tx_datetime") >= since)
    window = pl.concat([earlier, day.select(earlier.columns)])
    found = window.filter(pl.col("customer_id").is_in(cards) & ~pl.col("transaction_id").is_in(list(labelled)))
    known_at = EPOCH + timedelta(microseconds=day_end_us)
    events = [label_event(t, f, known_at, "investigation")
              for t, f in found.sort("transaction_id").select("transaction_id", "tx_fraud").iter_rows()]  # fmt: skip
    labelled.update(event["transaction_id"] for event in events)
    return events


def _note(summary: Summary, risk: dict[int, float], chunk: pl.DataFrame, answers: Sequence[dict]) -> None:
    if len(answers) != chunk.height:
        raise TrafficError(f"the service answered {len(answers)} of {chunk.height} transactions")
    summary.sent += chunk.height
    for card, answer in zip(chunk["customer_id"].to_list(), answers, strict=True):
        summary.decisions[answer["decision"]] += 1
        summary.degraded += bool(answer["degraded"])
        if answer["fraud_probability"] > risk.get(card, -1.0):
            risk[card] = answer["fraud_probability"]


def _served_risk(log: pl.DataFrame, sent: pl.DataFrame) -> dict[int, float]:
    """Each card's highest served risk among transactions sent before a stop, from the prediction log."""
    served = log.filter((pl.col("role") == "served") & pl.col("transaction_id").is_in(sent["transaction_id"].implode()))
    return dict(served.group_by("customer_id").agg(pl.col("fraud_probability").max()).iter_rows())


def _chunks(tx: pl.DataFrame, size: int, speed: float | None) -> Iterator[pl.DataFrame]:
    """Chunks of at most `size` transactions; paced, also at most `speed` simulated seconds (a wall second)."""
    if speed is None:
        yield from (tx.slice(start, size) for start in range(0, tx.height, size))
        return
    seconds = (_us(tx) // int(speed * 1_000_000)).to_list() if tx.height else []
    start = 0
    for end in range(1, tx.height + 1):
        if end == tx.height or seconds[end] != seconds[start] or end - start >= size:
            yield tx.slice(start, end - start)
            start = end


class _Pacer:
    """Waits so that simulated time runs `speed` times faster than the wall clock (no wait at full speed)."""

    def __init__(self, speed: float | None) -> None:
        self._speed, self._origin = speed, None

    def wait_until(self, moment: datetime) -> None:
        if self._speed is None:
            return
        now = time.monotonic()
        if self._origin is None:
            self._origin = (moment, now)
        due = self._origin[1] + (moment - self._origin[0]).total_seconds() / self._speed
        if due > now:
            time.sleep(due - now)


def world_of(context: Any) -> tuple[World, TrafficState]:
    """The world as the project's catalog and params describe it, and where the last run stopped."""
    from fraud_detection.feature_store.online import OnlineUpdaterSink

    params, catalog = context.params, context.catalog
    if params.ingest.source != "simulate":
        raise TrafficError(f"params.yaml ingest.source={params.ingest.source!r}: traffic continues the simulator; "
                           "expected `simulate`")  # fmt: skip
    config = SimulationConfig.from_params(params.simulate)
    history = history_of(catalog)
    last_day = (history["tx_datetime"].max().date() - config.start_date).days
    saved = catalog.load("traffic_state") if catalog.exists("traffic_state") else None
    state = TrafficState.of(saved, last_day + 1, _day_start_us(config, last_day + 1))
    if state.next_day > last_day + 1:
        raise TrafficError(
            f"traffic_state next_day={state.next_day}, but the data (its traffic days included) "
            f"ends on day {last_day}: expected {last_day + 1} (a finished day's file is missing)"
        )
    if state.next_day < last_day + 1:  # that day was finished and saved after the state: start on the next one
        state = TrafficState(last_day + 1, None, _day_start_us(config, last_day + 1) - 1)
    traffic = catalog.load("traffic_transactions")
    traffic = traffic.collect() if traffic is not None else history.clear()
    world = World(
        config, history, traffic.select(history.columns), params.features.label_delay_days,
        params.feedback.investigations_per_day, params.feedback.investigation_lookback_days,
        params.feedback.consume_batch, catalog.load("label_stream"), OnlineUpdaterSink(catalog.load("feature_store")),
        lambda day, frame: catalog.save("traffic_transactions", {day: frame}),
        lambda saved_state: catalog.save("traffic_state", saved_state), lambda: catalog.load("prediction_table"),
        _schedule(catalog, config),
    )  # fmt: skip
    return world, state


def _schedule(catalog: Any, config: SimulationConfig) -> CompromiseSchedule | None:
    """The compromises the simulate stage recorded (None where data was simulated before it recorded them)."""
    if not catalog.exists("simulated_compromises"):
        return None
    try:
        return CompromiseSchedule.from_frame(catalog.load("simulated_compromises"), config)
    except ValueError as error:
        raise TrafficError(str(error)) from error


def history_of(catalog: Any) -> pl.DataFrame:
    """Every transaction so far: the ingested data and the traffic days (which the next ingest includes)."""
    columns = [*TRANSACTION_FIELDS, "tx_fraud"]
    ingested = catalog.load("transactions")
    frames = [(ingested.lazy() if isinstance(ingested, pl.DataFrame) else ingested).select(columns)]
    traffic = catalog.load("traffic_transactions")
    if traffic is not None:
        frames.append(traffic.select(columns))
    frame = pl.concat(frames, how="vertical_relaxed").unique("transaction_id", keep="first")
    return frame.sort("tx_datetime", "transaction_id").collect()
