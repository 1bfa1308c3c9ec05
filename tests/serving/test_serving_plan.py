"""What serves follows the registry's running experiment: the serving plan is params.yaml's `serve.ab` and
`serve.shadow` until a rollout runs, the rollout's salt, shares and shadow while it runs, and params.yaml's again once
it ends; a customer the candidate serves at 5 % it still serves at 25 %; a detector swapped to a new plan routes by it
from the next request; `flush` returns only once what was logged before it is written."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from tests.conftest import changed
from tests.registry.conftest import model, store

from fraud_detection.experiments import rollout
from fraud_detection.experiments.rollout import shares_at
from fraud_detection.registry.gate import CHALLENGER, CHAMPION
from fraud_detection.serving.assembly import ServingPlan, serving_plan
from fraud_detection.serving.decision import FallbackRules
from fraud_detection.serving.detector import NO_CUSTOMER, NO_INTRADAY, NO_TERMINAL, FraudDetector, ServedModel
from fraud_detection.serving.params import ABParams, ServeParams, Thresholds
from fraud_detection.serving.prediction_log import PredictionLog
from fraud_detection.serving.routing import ABRouter
from fraud_detection.serving.schemas import Transaction

__all__ = ["model", "store"]
CUSTOMERS = range(20_000)


@pytest.fixture
def serve(params) -> ServeParams:
    """params.yaml `serve` with an A/B test and a shadow of its own (so that falling back to it shows)."""
    return changed(params.serve, ab={"salt": "params-ab", "variants": {CHAMPION: 0.9, CHALLENGER: 0.1}},
                   shadow=CHALLENGER)  # fmt: skip


def test_without_a_running_rollout_the_plan_is_params_serve(model, serve: ServeParams) -> None:
    registry, (v1, v2, _) = model
    registry.move(CHALLENGER, v2, "promote", "tests", "a challenger")
    plan = serving_plan(registry, serve)
    assert plan == ServingPlan(ABRouter.from_params(serve.ab), CHALLENGER, {CHAMPION: v1, CHALLENGER: v2})
    assert serving_plan(registry, serve) == plan, "an unchanged registry is no reload"


def test_a_running_rollout_decides_the_plan_and_its_end_gives_it_back(model, serve: ServeParams, params) -> None:
    registry, (v1, v2, v3) = model
    before = serving_plan(registry, serve)
    assert before.versions == {CHAMPION: v1, CHALLENGER: None}, "params name a challenger the registry lacks"

    shadow_first, split_first = (changed(params.rollout, steps=steps) for steps in ([0, 5, 100], [5, 25, 100]))
    state = rollout.start(registry, str(v3), shadow_first, None, "alice")  # the shadow step
    plan = serving_plan(registry, serve)
    assert plan.router == ABRouter.from_params(ABParams(salt=state["name"], variants={CHAMPION: 1.0}))
    assert (plan.shadow, plan.versions) == (CHALLENGER, {CHAMPION: v1, CHALLENGER: v3})

    rollout.abort(registry, "alice", "next")
    assert serving_plan(registry, serve) == ServingPlan(before.router, CHALLENGER, {CHAMPION: v1, CHALLENGER: v3})

    state = rollout.start(registry, str(v2), split_first, None, "alice")  # a split step, no shadow
    plan = serving_plan(registry, serve)
    assert plan.router == ABRouter.from_params(ABParams(salt="rollout-v2-2", variants=shares_at(5)))
    assert plan.router.salt == state["salt"] != serve.ab.salt
    assert (plan.shadow, plan.versions) == (None, {CHAMPION: v1, CHALLENGER: v2})


def test_a_customer_the_candidate_serves_at_5_percent_it_still_serves_at_25() -> None:
    at = {percent: ABRouter.from_params(ABParams(salt="rollout-v2-1", variants=shares_at(percent)))
          for percent in (0, 5, 25)}  # fmt: skip
    served = {percent: {c for c in CUSTOMERS if router.variant(c) == CHALLENGER} for percent, router in at.items()}
    assert not served[0]
    assert served[5] < served[25], "growing the share only adds customers"
    assert len(served[5]) / len(CUSTOMERS) == pytest.approx(0.05, abs=0.01)
    assert len(served[25]) / len(CUSTOMERS) == pytest.approx(0.25, abs=0.02)
    other = ABRouter.from_params(ABParams(salt="rollout-v3-2", variants=shares_at(5)))
    overlap = len(served[5] & {c for c in CUSTOMERS if other.variant(c) == CHALLENGER}) / len(served[5])
    assert overlap < 0.2, "another rollout's salt draws other customers"


class _SlowSink:
    def __init__(self) -> None:
        self.records: list[dict] = []
        self.lock = threading.Lock()

    def write(self, records: list[dict]) -> None:
        time.sleep(0.2)
        with self.lock:
            self.records.extend(records)

    def close(self) -> None:
        pass


def test_flush_returns_once_the_earlier_records_are_written() -> None:
    sink = _SlowSink()
    log = PredictionLog(sink)
    log.record_many([{"n": 1}, {"n": 2}])
    log.record_many([{"n": 3}])
    log.flush()
    assert [r["n"] for r in sink.records] == [1, 2, 3] and log.written == 3
    log.close()


class _NoHistory:
    """A feature source that knows no customer or terminal (the detector scores on defaults)."""

    writable, write_failures = True, 0

    def state(self, customer_id: int, terminal_id: int) -> dict[str, Any]:
        return NO_CUSTOMER | NO_INTRADAY | NO_TERMINAL

    def states(self, customer_ids, terminal_ids) -> tuple[list, list, list]:
        n = len(customer_ids)
        return [NO_CUSTOMER] * n, [NO_INTRADAY] * n, [NO_TERMINAL] * n

    def record(self, intraday_rows: dict[int, dict]) -> None:
        pass

    def close(self) -> None:
        pass


def _constant(version: str, score: float) -> ServedModel:
    return ServedModel(version, lambda matrix: np.full(len(matrix), score))


def _transaction(number: int, customer_id: int) -> Transaction:
    return Transaction(transaction_id=number, tx_datetime=datetime(2024, 3, 1, 12, number, tzinfo=UTC),
                       customer_id=customer_id, terminal_id=1, tx_amount=10.0)  # fmt: skip


def test_a_swap_routes_by_the_new_plan_from_the_next_request() -> None:
    sink = _SlowSink()
    champion, candidate = _constant("1", 0.1), _constant("2", 0.2)
    alone = ABRouter.from_params(ABParams(salt="rollout-v2-1", variants={CHAMPION: 1.0}))
    split = ABRouter.from_params(ABParams(salt="rollout-v2-1", variants=shares_at(25)))
    customer = next(c for c in CUSTOMERS if split.variant(c) == CHALLENGER)
    detector = FraudDetector({CHAMPION: champion}, _NoHistory(), alone, Thresholds(review=0.3, decline=0.7),
                             FallbackRules(amount_threshold=220, terminal_risk=0.5, amount_ratio=3),
                             PredictionLog(sink))  # fmt: skip
    first = detector.predict(_transaction(1, customer))
    assert (first.variant, first.model_version) == (CHAMPION, "1")

    with pytest.raises(ValueError, match="without a model"):
        detector.swap({CHAMPION: champion}, None, split)
    assert detector.router == alone, "a refused swap keeps the plan"

    detector.swap({CHAMPION: champion}, candidate, alone)  # the shadow step
    detector.predict(_transaction(2, customer))
    detector.swap({CHAMPION: champion, CHALLENGER: candidate}, None, split)  # 25 %
    [second] = detector.predict_batch([_transaction(3, customer)])
    assert (second.variant, second.model_version) == (CHALLENGER, "2")
    assert detector.versions() == {CHAMPION: "1", CHALLENGER: "2"}

    detector.flush()  # the shadow's answer first, then the log
    logged = [(r["transaction_id"], r["role"], r["variant"], r["model_version"]) for r in sink.records]
    assert sorted(logged) == [(1, "served", CHAMPION, "1"), (2, "served", CHAMPION, "1"), (2, "shadow", "shadow", "2"),
                              (3, "served", CHALLENGER, "2")]  # fmt: skip
    detector.close()
