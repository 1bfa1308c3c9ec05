"""The serving parts on their own: request checks, decisions and the rule fallback, A/B assignment, the prediction
log (never blocking, nothing lost on a clean close, drops counted)."""

from __future__ import annotations

import re
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from fraud_detection.ingestion.schema import Limits
from fraud_detection.runtime.params import ParamsError, checked_params
from fraud_detection.serving.decision import FallbackRules, decide, rule_score
from fraud_detection.serving.params import ABParams, FallbackParams, Thresholds
from fraud_detection.serving.prediction_log import JsonLinesSink, PredictionLog, RedisStreamSink, read_json_lines
from fraud_detection.serving.routing import ABRouter
from fraud_detection.serving.schemas import InvalidTransaction, Transaction, check_limits

GOOD = {"transaction_id": 7, "tx_datetime": "2018-09-30T12:00:00Z", "customer_id": 3, "terminal_id": 9,
        "tx_amount": 42.5}  # fmt: skip
LIMITS = Limits(datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC), 1_000_000.0)


def test_a_good_transaction_passes() -> None:
    transaction = Transaction.model_validate(GOOD)
    check_limits(transaction, LIMITS)
    assert transaction.tx_datetime == datetime(2018, 9, 30, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"customer_id": None}, "customer_id"),
        ({"customer_id": "abc"}, "customer_id"),
        ({"terminal_id": -1}, "terminal_id"),
        ({"tx_datetime": "2018-09-30T12:00:00"}, "tx_datetime"),  # no timezone
        ({"tx_datetime": "yesterday"}, "tx_datetime"),
        ({"tx_amount": "a lot"}, "tx_amount"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_wrong_types_name_the_field(change: dict, field: str) -> None:
    with pytest.raises(ValidationError) as error:
        Transaction.model_validate({**GOOD, **change})
    assert field in {str(part) for e in error.value.errors() for part in e["loc"]}


def test_a_missing_field_is_named() -> None:
    with pytest.raises(ValidationError, match="tx_amount"):
        Transaction.model_validate({k: v for k, v in GOOD.items() if k != "tx_amount"})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tx_amount": -1.0}, "tx_amount=-1.0; expected a finite amount between 0 and 1e+06"),
        ({"tx_amount": float("nan")}, "tx_amount=nan"),
        ({"tx_amount": float("inf")}, "tx_amount=inf"),
        ({"tx_amount": 2e6}, "tx_amount=2000000.0"),
        ({"tx_datetime": "1900-01-01T00:00:00Z"}, "tx_datetime=1900-01-01T00:00:00+00:00; expected an instant from"),
        ({"tx_datetime": "2200-01-01T00:00:00+02:00"}, "tx_datetime=2200-01-01T00:00:00+02:00"),
    ],
)
def test_values_outside_the_ingestion_limits_are_refused_by_name(change: dict, message: str) -> None:
    with pytest.raises(InvalidTransaction, match=re.escape(message)):
        check_limits(Transaction.model_validate({**GOOD, **change}), LIMITS)


def test_decisions_follow_the_thresholds() -> None:
    thresholds = Thresholds(review=0.3, decline=0.7)
    assert [decide(p, thresholds) for p in (0.0, 0.29, 0.3, 0.69, 0.7, 1.0)] == [
        "approve", "approve", "review", "review", "decline", "decline"]  # fmt: skip


@pytest.mark.parametrize(
    ("serve", "message"),
    [
        ({"thresholds": {"review": 0.8, "decline": 0.5}}, "serve.thresholds: expected review <= decline (0.8 > 0.5)"),
        ({"thresholds": {"review": 0.3, "decline": 1.5}}, "serve.thresholds.decline=1.5: expected a number in [0, 1]"),
        ({"ab": {"salt": "s", "variants": {"a": 0.5, "b": 0.4}}}, "serve.ab: expected variants' shares summing to 1"),
        ({"ab": {"salt": "s", "variants": {"a": 1.5, "b": -0.5}}}, "serve.ab.variants.a=1.5: expected a number in [0"),
        ({"ab": {"salt": "s", "variants": {}}}, "serve.ab.variants={}: expected a non-empty mapping"),
    ],
)
def test_bad_thresholds_and_ab_shares_are_refused_by_name(config_loader, serve: dict, message: str) -> None:
    raw = config_loader["parameters"]
    with pytest.raises(ParamsError, match=re.escape(f"params.yaml {message}")):
        checked_params({**raw, "serve": {**raw["serve"], **serve}})


def test_the_rule_fallback_follows_the_fraud_scenarios() -> None:
    rules = FallbackRules.of(FallbackParams(terminal_risk=0.5, amount_ratio=3), amount_threshold=220)
    base = {"tx_amount": 50.0, "terminal_risk_7d": 0.0, "tx_amount_over_customer_avg_30d": 1.0}
    assert rule_score(base, rules) == 0.01
    assert rule_score({**base, "tx_amount": 300.0}, rules) == 0.9
    assert rule_score({**base, "terminal_risk_7d": 0.6}, rules) == 0.8
    assert rule_score({**base, "tx_amount_over_customer_avg_30d": 5.0}, rules) == 0.6


@pytest.mark.parametrize("shares", [{"champion": 0.9, "challenger": 0.1}, {"a": 0.5, "b": 0.3, "c": 0.2}])
def test_ab_shares_over_100_000_customers_are_within_half_a_point(shares: dict) -> None:
    router = ABRouter.from_params(ABParams(salt="test", variants=shares))
    counts = Counter(router.variant(c) for c in range(100_000))
    for name, share in shares.items():
        assert abs(counts[name] / 100_000 - share) < 0.005, (name, counts[name])


@pytest.mark.parametrize(
    ("before", "after", "grown"),
    [
        ({"control": 0.95, "treatment": 0.05}, {"control": 0.75, "treatment": 0.25}, "treatment"),
        ({"a": 0.9, "b": 0.05, "c": 0.05}, {"a": 0.7, "b": 0.05, "c": 0.25}, "c"),
        ({"a": 0.9, "b": 0.05, "c": 0.05}, {"a": 0.7, "b": 0.25, "c": 0.05}, "b"),
    ],
)
def test_a_growing_share_keeps_every_treatments_customers(before: dict, after: dict, grown: str) -> None:
    """A rollout step: the grown treatment's customers stay in it, the others' stay in theirs, and only control
    customers move, into the grown treatment."""
    old, new = (ABRouter.from_params(ABParams(salt="roll", variants=v)) for v in (before, after))
    moves = Counter((old.variant(c), new.variant(c)) for c in range(100_000))
    control = next(iter(before))
    assert {pair for pair in moves if pair[0] != pair[1]} == {(control, grown)}
    assert abs(moves[(control, grown)] / 100_000 - (after[grown] - before[grown])) < 0.005


def test_a_treatment_share_above_its_lane_is_refused() -> None:
    with pytest.raises(ValueError, match=r"the treatment b's share at most 1/2 with 2 treatments \(it is 0.6"):
        ABParams(salt="s", variants={"a": 0.2, "b": 0.6, "c": 0.2})


def test_a_customer_always_gets_the_same_variant_and_the_salt_reshuffles() -> None:
    router = ABRouter.from_params(ABParams(salt="s1", variants={"a": 0.5, "b": 0.5}))
    assert all(router.variant(c) == router.variant(c) for c in range(1000))
    again = ABRouter.from_params(ABParams(salt="s1", variants={"a": 0.5, "b": 0.5}))
    assert [router.variant(c) for c in range(1000)] == [again.variant(c) for c in range(1000)]
    other = ABRouter.from_params(ABParams(salt="s2", variants={"a": 0.5, "b": 0.5}))
    moved = sum(router.variant(c) != other.variant(c) for c in range(10_000))
    assert 4000 < moved < 6000


def test_the_log_writes_every_record_by_a_clean_close(tmp_path) -> None:
    log = PredictionLog(JsonLinesSink(tmp_path), capacity=100_000)
    for i in range(20_000):
        log.record({"request_id": i, "score": i / 20_000})
    log.close()
    records = list(read_json_lines(tmp_path))
    assert [r["request_id"] for r in records] == list(range(20_000))
    assert (log.written, log.dropped, log.failed) == (20_000, 0, 0)


class _StuckSink:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.records: list = []

    def write(self, records: list) -> None:
        self.release.wait()
        self.records += records

    def close(self) -> None:
        pass


def test_under_overload_records_are_dropped_and_counted_never_blocking() -> None:
    sink = _StuckSink()
    log = PredictionLog(sink, capacity=100)
    for i in range(1_000):
        log.record({"request_id": i})  # the sink is stuck: this must not wait
    assert log.dropped >= 1_000 - 100 - 512
    sink.release.set()
    log.close()
    assert log.written + log.dropped == 1_000 == len(sink.records) + log.dropped


class _BrokenSink:
    def write(self, records: list) -> None:
        raise OSError("disk full")

    def close(self) -> None:
        pass


def test_a_failing_sink_is_counted_not_raised() -> None:
    log = PredictionLog(_BrokenSink())
    log.record({"request_id": 1})
    log.close()
    assert (log.written, log.failed) == (0, 1)


@pytest.mark.redis
def test_the_redis_stream_sink_writes_readable_records() -> None:
    import json

    import redis

    stream = f"test-predictions-{uuid.uuid4().hex[:8]}"
    log = PredictionLog(RedisStreamSink("redis://127.0.0.1:6379/0", stream))
    for i in range(1_000):
        log.record({"request_id": i, "score": 0.5})
    log.close()
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        entries = client.xrange(stream)
        assert [json.loads(fields[b"record"])["request_id"] for _, fields in entries] == list(range(1_000))
    finally:
        client.delete(stream)
