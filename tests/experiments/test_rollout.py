"""The rollout controller on a real MLflow registry and synthetic labelled predictions: `start` makes the candidate
the challenger in shadow, keeps the design in the state and refuses what cannot apply without changing anything; a
tick aborts a candidate clearly worse on the primary metric or a guardrail, a sample ratio mismatch or aliases moved
behind its back (the champion untouched), waits for matured labels without writing, advances a healthy candidate to
the next share from the latest served transaction, and promotes only once every guardrail's harm is shown within its
tolerance (the primary metric need only not be shown worse), a promotion that rollback undoes; the shadow step
judges the candidate's pairs; the register stage's `promotion: rollout` makes a passing candidate the challenger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from fraud_detection.cli import main
from fraud_detection.experiments import rollout
from fraud_detection.experiments.params import RolloutParams
from fraud_detection.experiments.rollout import ABORTED, ADVANCE, HALT, PROMOTED, WAIT, RolloutError, shares_at
from fraud_detection.feedback.outcomes import COLUMNS
from fraud_detection.registry.gate import CHALLENGER, CHAMPION, ROLLOUT_REASON
from fraud_detection.registry.promotion import promote_gated
from fraud_detection.registry.registry import (
    EXPERIMENT,
    ROLLOUT,
    RUNNING,
    ModelRegistry,
    RegistryError,
    champion_stack,
)
from fraud_detection.runtime.project import project_params
from tests.conftest import PROJECT_ROOT, changed
from tests.registry.conftest import LENIENT, Store, model, store

__all__ = ["model", "store"]
PARAMS = project_params(root=PROJECT_ROOT)
DESIGN = changed(PARAMS.rollout, min_labelled=300)  # params.yaml's metrics and tolerances; small tables' labels
EXPERIMENT_PARAMS = changed(PARAMS.experiment, bootstrap_replicates=50)
START = datetime(2024, 3, 1, tzinfo=UTC)
DAYS, DELAY = 21, 7  # a table's days; the label delay (the last DELAY days are not matured)


def labelled(customers: dict[str, int], seed: int = 0, start: datetime = START,
             recall: dict[str, float] | None = None, false_declines: float = 0.0) -> pl.DataFrame:  # fmt: skip
    """The labelled predictions of `customers` per arm served over DAYS days from `start`: about five transactions
    a customer, a fifth of them frauds, each fraud declined with its arm's `recall` (0.95), a `false_declines` share
    of the genuine ones declined; labels known up to DELAY days before the end."""
    rng = np.random.default_rng(seed)
    arm = np.repeat(list(customers), list(customers.values()))
    customer = np.repeat(np.arange(len(arm)), rng.poisson(4.0, len(arm)) + 1)
    rows = len(customer)
    fraud = rng.random(rows) < 0.2
    caught = rng.random(rows) < np.array([(recall or {}).get(name, 0.95) for name in arm])[customer]
    declined = rng.random(rows) < false_declines
    decision = np.where((fraud & caught) | (~fraud & declined), "decline", "approve")
    moments = [start + timedelta(seconds=int(s)) for s in rng.integers(1, DAYS * 86_400, rows)]
    known = np.array([m < start + timedelta(days=DAYS - DELAY) for m in moments])
    return pl.DataFrame({
        "transaction_id": np.arange(rows), "tx_datetime": moments, "customer_id": customer,
        "tx_amount": np.round(rng.gamma(2, 30, rows), 2), "role": "served", "variant": arm[customer],
        "model_version": "1", "fraud_probability": np.where(decision == "decline", 0.9, 0.1), "decision": decision,
        "latency_ms": rng.gamma(4, 0.5, rows), "degraded": False,
        "tx_fraud": pl.Series(fraud.astype(np.int8)).set(pl.Series(~known), None),
        "label_known_at": [m + timedelta(days=1) if k else None for m, k in zip(moments, known, strict=True)],
        "label_source": ["delayed" if k else None for k in known],
    }).cast(COLUMNS)  # fmt: skip


def with_shadow(served: pl.DataFrame, version: int, approves_everything: bool = False) -> pl.DataFrame:
    """The served rows and the shadow's row of each (version `version`): the same answer, or an approval."""
    shadow = served.with_columns(role=pl.lit("shadow"), variant=pl.lit("shadow"), model_version=pl.lit(str(version)))
    if approves_everything:
        shadow = shadow.with_columns(decision=pl.lit("approve"), fraud_probability=pl.lit(0.01))
    return pl.concat([served, shadow]).sort("tx_datetime", "transaction_id", "role")


def arms(percent: int, customers: int) -> dict[str, int]:
    """Customers per arm exactly at the step's shares (no sample ratio mismatch)."""
    return {name: round(share * customers) for name, share in shares_at(percent).items()}


def design(*steps: int, **changes: object) -> RolloutParams:
    return changed(DESIGN, steps=list(steps), **changes)


def _tick(registry: ModelRegistry, predictions: pl.DataFrame) -> tuple[dict, rollout.Verdict]:
    return rollout.tick(registry, predictions, EXPERIMENT_PARAMS, DELAY, "ticker")


def _judge(predictions: pl.DataFrame, state: dict) -> rollout.Verdict:
    return rollout.judge(predictions, state, EXPERIMENT_PARAMS, DELAY)


def _snapshot(registry: ModelRegistry) -> tuple:
    return registry.status()["aliases"], registry.history(), registry.experiment()


# -- start


def test_start_makes_the_candidate_challenger_in_shadow_and_keeps_the_design(model) -> None:
    registry, (v1, v2, _) = model
    state = rollout.start(registry, str(v2), design(0, 5, 100), START, "alice")
    assert registry.experiment() == state
    assert (state["name"], state["salt"], state["status"], state["step"]) == ("rollout-v2-1", "rollout-v2-1",
                                                                              RUNNING, 0)  # fmt: skip
    assert state["variants"] == {CHAMPION: 1.0} and state["shadow"] == CHALLENGER
    assert state["versions"] == {CHAMPION: v1, CHALLENGER: v2}
    assert state["started"] == state["step_started"] == START.isoformat()
    assert (state["steps"], state["min_labelled"], state["guardrails"]) == ([0, 5, 100], 300, DESIGN.guardrails)
    assert state["primary"] == {"metric": DESIGN.primary_metric, "tolerance": DESIGN.primary_tolerance}
    assert registry.status()["aliases"] == {CHAMPION: v1, CHALLENGER: v2}
    moved, started = registry.history()[-2:]
    assert (moved.action, moved.alias, moved.version, moved.actor) == (ROLLOUT, CHALLENGER, v2, "alice")
    assert (started.action, started.alias, started.version, started.experiment) == (rollout.START, EXPERIMENT, v2,
                                                                                    state)  # fmt: skip
    assert rollout.events(registry, state["name"]) == [moved, started]


def test_a_second_start_while_one_runs_is_refused_and_changes_nothing(model) -> None:
    registry, (_, v2, v3) = model
    rollout.start(registry, str(v2), design(0, 5, 100), None, "alice")
    before = _snapshot(registry)
    with pytest.raises(RegistryError, match="rollout-v2-1 is running"):  # one experiment at a time
        rollout.start(registry, str(v3), design(5, 100), None, "bob")
    assert _snapshot(registry) == before


def test_rolling_out_the_champion_or_without_a_champion_is_refused(model, store: Store) -> None:
    registry, (v1, _, _) = model
    before = _snapshot(registry)
    with pytest.raises(RolloutError, match=f"version {v1} is the champion already"):
        rollout.start(registry, str(v1), design(0, 100), None, "alice")
    with pytest.raises(RegistryError, match="no such alias"):
        rollout.start(registry, "nobody", design(0, 100), None, "alice")
    assert _snapshot(registry) == before

    lonely = store.registry("rollout-no-champion")
    version = int(lonely.register(store.runs[1], {"source": "test"}).version)
    with pytest.raises(RolloutError, match="has no champion"):
        rollout.start(lonely, str(version), design(0, 100), None, "alice")
    assert lonely.experiment() is None and lonely.history() == []


def test_the_candidate_may_be_named_by_its_alias(model) -> None:
    registry, (v1, _, v3) = model
    registry.move(CHALLENGER, v3, "promote", "tests", "the gate's challenger")
    state = rollout.start(registry, CHALLENGER, design(5, 100), None, "alice")
    assert state["versions"] == {CHAMPION: v1, CHALLENGER: v3} and state["name"] == "rollout-v3-1"
    assert state["variants"] == shares_at(5) and state["shadow"] is None


# -- a split step


def test_a_candidate_that_approves_frauds_is_aborted_and_the_champion_stays(model) -> None:
    registry, (v1, v2, _) = model
    rollout.start(registry, str(v2), design(5, 25, 100), None, "alice")
    state, verdict = _tick(registry, labelled(arms(5, 4000), recall={CHALLENGER: 0.0}))
    assert verdict.action == HALT
    assert state == registry.experiment() and state["status"] == ABORTED
    assert state["variants"] == {CHAMPION: 1.0} and state["shadow"] is None
    assert registry.alias_version(CHAMPION) == v1
    [primary] = [c for c in verdict.checks if c["role"] == "primary"]
    assert (primary["metric"], primary["verdict"]) == ("fraud_amount_recall", "breached")
    assert primary["harm_low"] > DESIGN.primary_tolerance
    aborted = registry.history()[-1]
    assert aborted.action == rollout.ABORT and aborted.actor == "ticker" and aborted.experiment == state
    assert "aborted at 5 %" in aborted.reason and "fraud_amount_recall breached" in aborted.reason
    assert _tick(registry, labelled(arms(5, 4000))) == (state, None), "an ended rollout is not judged again"


def test_a_metric_resting_on_too_few_customers_is_not_judged(model) -> None:
    # seen on the default data at 1 %: two fraud customers in the candidate's arm, neither caught, gave a recall
    # of 0 with no variance, a "breach" of a retrain as good as the champion
    registry, (_, v2, _) = model
    rollout.start(registry, str(v2), design(5, 25, 100, min_labelled=1), None, "alice")
    few = labelled(arms(5, 200), recall={CHALLENGER: 0.0})  # ten candidate customers, a couple with a fraud
    verdict = _judge(few, registry.experiment())
    [primary] = [c for c in verdict.checks if c["role"] == "primary"]
    assert primary["customers"] < DESIGN.min_customers and primary["harm_low"] > DESIGN.primary_tolerance
    assert primary["verdict"] == "open" and verdict.action == ADVANCE, "a split step goes on without it"
    enough = _judge(few, {**registry.experiment(), "min_customers": 1})
    assert enough.action == HALT, "the same figures, judged"
    thin_guardrails = _judge(few, {**registry.experiment(), "min_customers": 1000})
    assert thin_guardrails.action == WAIT and "below min_customers 1000" in thin_guardrails.reasons[0]


def test_the_shadow_step_waits_for_the_customers_of_the_primary_metric(model) -> None:
    registry, (_, v2, _) = model
    rollout.start(registry, str(v2), design(0, 25, 100, min_labelled=1), None, "alice")
    few = with_shadow(labelled({CHAMPION: 20}), v2)  # a handful of customers with a fraud
    verdict = _judge(few, registry.experiment())
    [primary] = [c for c in verdict.checks if c["role"] == "primary"]
    assert primary["customers"] < DESIGN.min_customers and verdict.action == WAIT
    assert "fraud_amount_recall" in verdict.reasons[0] and "below min_customers" in verdict.reasons[0]


def test_a_breached_guardrail_aborts(model) -> None:
    registry, (v1, v2, _) = model
    rollout.start(registry, str(v2), design(5, 25, 100), None, "alice")
    champion = labelled({CHAMPION: 3800}, seed=1)
    candidate = labelled({CHALLENGER: 200}, seed=2, false_declines=0.2).with_columns(
        pl.col("customer_id") + 10**6, pl.col("transaction_id") + 10**6)  # fmt: skip
    state, verdict = _tick(registry, pl.concat([champion, candidate]))
    assert verdict.action == HALT and state["status"] == ABORTED and registry.alias_version(CHAMPION) == v1
    assert [c["metric"] for c in verdict.checks if c["verdict"] == "breached"] == ["false_decline_rate"]
    assert "false_decline_rate breached" in registry.history()[-1].reason


def test_a_sample_ratio_mismatch_aborts(model) -> None:
    registry, (v1, v2, _) = model
    rollout.start(registry, str(v2), design(5, 25, 100), None, "alice")
    state, verdict = _tick(registry, labelled({CHAMPION: 3600, CHALLENGER: 400}))  # twice the design's 5 %
    assert verdict.action == HALT and verdict.srm["mismatch"] is True
    assert state["status"] == ABORTED and registry.alias_version(CHAMPION) == v1
    assert "sample ratio mismatch" in registry.history()[-1].reason


def test_too_few_matured_labels_wait_and_write_nothing(model) -> None:
    registry, (_, v2, _) = model
    rollout.start(registry, str(v2), design(5, 25, 100, min_labelled=5000), None, "alice")
    before = _snapshot(registry)
    state, verdict = _tick(registry, labelled(arms(5, 4000)))
    assert verdict.action == WAIT and state == before[2]
    assert verdict.counts[CHAMPION] >= 5000 > verdict.counts[CHALLENGER] > 0
    assert "below min_labelled 5000" in verdict.reasons[0]
    assert _snapshot(registry) == before


def test_a_healthy_candidate_advances_from_the_latest_served_transaction(model) -> None:
    registry, (v1, v2, _) = model
    first = rollout.start(registry, str(v2), design(5, 25, 100), None, "alice")
    predictions = labelled(arms(5, 4000))
    state, verdict = _tick(registry, predictions)
    # a step that does not promote advances on no breach, its harms not all shown within tolerance yet
    assert verdict.action == ADVANCE and {c["verdict"] for c in verdict.checks} == {"clear", "open"}
    assert state == registry.experiment() == {**first, "step": 1, "variants": shares_at(25),
                                              "step_started": predictions["tx_datetime"].max().isoformat()}  # fmt: skip
    stepped = registry.history()[-1]
    assert (stepped.action, stepped.experiment) == (rollout.STEP, state)
    assert "5 % -> 25 % of customers" in stepped.reason
    assert registry.status()["aliases"] == {CHAMPION: v1, CHALLENGER: v2}
    # the next step is judged on its own outcomes: none yet
    again, verdict = _tick(registry, predictions)
    assert verdict.action == WAIT and again == state and "since the step began" in verdict.reasons[0]


def test_outcomes_served_before_the_step_began_are_not_judged(model) -> None:
    registry, (_, v2, _) = model
    began = START + timedelta(days=DAYS)
    rollout.start(registry, str(v2), design(5, 25, 100), began, "alice")
    bad_before = labelled(arms(5, 4000), seed=1, recall={CHALLENGER: 0.0})  # a table of the days before the start
    good_after = labelled(arms(5, 4000), seed=2, start=began).with_columns(pl.col("transaction_id") + 10**6)
    _, verdict = _tick(registry, pl.concat([bad_before, good_after]))
    assert verdict.action == ADVANCE


def test_the_step_to_100_promotes_only_once_every_guardrail_is_shown_within_tolerance(model) -> None:
    registry, (v1, v2, _) = model
    tolerances = {**DESIGN.guardrails, "false_decline_rate": 0.02}
    state = rollout.start(registry, str(v2), design(50, 100, guardrails=tolerances), None, "alice")
    few = labelled(arms(50, 1000), seed=1, false_declines=0.005)
    verdict = _judge(few, state)
    assert verdict.action == WAIT
    assert verdict.reasons == ["to promote, not yet shown within tolerance: ['false_decline_rate']"]
    not_last = {**state, "steps": [50, 75, 100]}  # the same evidence suffices for a step that does not promote
    assert _judge(few, not_last).action == ADVANCE

    state, verdict = _tick(registry, labelled(arms(50, 4000), seed=1, false_declines=0.005))
    assert verdict.action == ADVANCE and {c["verdict"] for c in verdict.checks if c["role"] == "guardrail"} == {"clear"}
    assert state == registry.experiment() and state["status"] == PROMOTED and state["step"] == 1
    assert state["variants"] == {CHAMPION: 1.0} and state["shadow"] is None
    assert registry.status()["aliases"] == {CHAMPION: v2}, "the challenger alias leaves the new champion"
    moved = [e for e in registry.history() if e.alias == CHAMPION][-1]
    assert (moved.action, moved.version, moved.previous) == (ROLLOUT, v2, v1)
    assert registry.history()[-1].action == rollout.PROMOTE
    assert champion_stack(registry.history())[-2:] == [v1, v2]
    assert registry.rollback("oncall", "regression").version == v1
    assert registry.alias_version(CHAMPION) == v1


def test_the_primary_metric_need_not_be_proven_to_promote(model) -> None:
    registry, (_, v2, _) = model
    state = rollout.start(registry, str(v2), design(50, 100), None, "alice")
    verdict = _judge(labelled(arms(50, 1000), seed=1), state)
    assert verdict.action == ADVANCE
    assert {c["role"]: c["verdict"] for c in verdict.checks if c["verdict"] != "clear"} == {"primary": "open"}


# -- the shadow step


def test_a_shadow_answering_as_the_champion_advances_once_it_has_its_pairs(model) -> None:
    registry, (_, v2, _) = model
    first = rollout.start(registry, str(v2), design(0, 5, 100), None, "alice")
    pairs = with_shadow(labelled({CHAMPION: 300}), v2)
    verdict = _judge(pairs, {**first, "min_labelled": 10_000})
    assert verdict.action == WAIT and 0 < verdict.counts["pairs"] < 10_000
    state, verdict = _tick(registry, pairs)
    assert verdict.action == ADVANCE and verdict.counts["pairs"] >= DESIGN.min_labelled
    assert (state["step"], state["variants"], state["shadow"]) == (1, shares_at(5), None)


def test_a_shadow_that_approves_every_fraud_is_aborted(model) -> None:
    registry, (v1, v2, _) = model
    rollout.start(registry, str(v2), design(0, 5, 100), None, "alice")
    state, verdict = _tick(registry, with_shadow(labelled({CHAMPION: 300}), v2, approves_everything=True))
    assert verdict.action == HALT and state["status"] == ABORTED
    assert "fraud_amount_recall breached" in verdict.reasons[0]
    assert registry.alias_version(CHAMPION) == v1


def test_the_shadow_step_judges_only_the_candidates_shadow_rows(model) -> None:
    registry, (_, v2, v3) = model
    state = rollout.start(registry, str(v2), design(0, 5, 100), None, "alice")
    another = with_shadow(labelled({CHAMPION: 300}), v3, approves_everything=True)  # an earlier shadow, say
    verdict = _judge(another, state)
    assert verdict.action == WAIT and f"(version {v2})" in verdict.reasons[0]


# -- moved aliases, abort


@pytest.mark.parametrize("outside", ["registry", "mlflow"])
def test_aliases_moved_outside_the_rollout_abort_it(model, outside: str) -> None:
    registry, (v1, v2, v3) = model
    rollout.start(registry, str(v2), design(5, 25, 100), None, "alice")
    if outside == "registry":
        registry.move(CHALLENGER, v3, "promote", "bob", "another candidate")
    else:  # in MLflow's UI, say: adopted as an external move
        registry.client.set_registered_model_alias(registry.name, CHAMPION, str(v3))
    state, verdict = _tick(registry, labelled(arms(5, 4000)))
    assert verdict.action == HALT and state["status"] == ABORTED
    assert verdict.reasons[0].startswith("the aliases moved outside the rollout")
    assert f"expected {{'champion': {v1}, 'challenger': {v2}}}" in registry.history()[-1].reason


def test_abort_needs_a_running_rollout_and_stops_it(model) -> None:
    registry, (v1, v2, _) = model
    with pytest.raises(RolloutError, match="no rollout is running"):
        rollout.abort(registry, "alice", "why not")
    rollout.start(registry, str(v2), design(0, 5, 100), None, "alice")
    state = rollout.abort(registry, "bob", "pager went off")
    assert state == registry.experiment() and state["status"] == ABORTED
    assert state["variants"] == {CHAMPION: 1.0} and state["shadow"] is None
    event = registry.history()[-1]
    assert (event.action, event.actor) == (rollout.ABORT, "bob") and event.reason.endswith("pager went off")
    assert registry.alias_version(CHAMPION) == v1
    with pytest.raises(RolloutError, match="no rollout is running"):
        rollout.abort(registry, "bob", "twice")
    assert rollout.start(registry, str(v2), design(5, 100), None, "alice")["name"] == "rollout-v2-2", "a new one"


def test_steps_that_do_not_rise_to_100_are_refused_by_the_cli(capsys: pytest.CaptureFixture) -> None:
    from fraud_detection.cli.rollout import _steps

    assert _steps("1,5,25,50,100") == [1, 5, 25, 50, 100] and _steps("0,100") == [0, 100]
    for steps in ("5,1", "0,5,50", "0,x,100", "100"):
        with pytest.raises(SystemExit) as exit_:
            main(["rollout", "start", "--steps", steps])
        assert exit_.value.code == 2
        assert "expected percents rising strictly" in capsys.readouterr().err


# -- the register stage's promotion


def test_with_promotion_rollout_a_passing_candidate_becomes_challenger(store: Store) -> None:
    registry = store.registry("rollout-promotion")
    v1, v2, v3 = (int(registry.register(run, {"source": "test"}).version) for run in store.runs)
    first, _, _ = promote_gated(registry, v1, store.window, "w", LENIENT, "stage", promotion="rollout")
    assert first.promoted and not first.via_rollout, "the first model still becomes champion"
    decision, before, events = promote_gated(registry, v3, store.window, "w", LENIENT, "stage", promotion="rollout")
    assert decision.passed and decision.via_rollout and not decision.promoted and before == v1
    assert decision.reasons[0] == ROLLOUT_REASON and decision.to_dict()["via_rollout"] is True
    assert [(e.alias, e.version) for e in events] == [(CHALLENGER, v3)]
    assert registry.status()["aliases"] == {CHAMPION: v1, CHALLENGER: v3}
    assert registry.version(v3).tags["gate.alias"] == CHALLENGER

    failing = changed(LENIENT, min_auc_roc=0.9999)
    refused, _, _ = promote_gated(registry, v2, store.window, "w", failing, "stage", promotion="rollout")
    assert not refused.passed and not refused.via_rollout and ROLLOUT_REASON not in refused.reasons
    direct, _, _ = promote_gated(registry, v2, store.window, "w", LENIENT, "stage", promotion="direct")
    assert direct.promoted and direct.passed and registry.alias_version(CHAMPION) == v2
