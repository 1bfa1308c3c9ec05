"""A candidate's gradual rollout: shadow, then growing shares of customers, then champion; or an abort.

The rollout is an experiment kept in the registry (`ModelRegistry.experiment`, every change an event of its history,
under its lock): the candidate is the `challenger` alias, the champion the control, and the state says what serves
now (`variants`: the shares; `shadow`: the alias scored in shadow). The service's reload watcher (and `traffic run`
in process) applies it without a restart. Its salt is the rollout's name: each rollout draws its own customers, and
a customer in the candidate's share at 5 % is still in it at 25 % (serving/routing.py).

A tick (`fraud-detection rollout tick`, by a scheduler, and by `traffic run` once a simulated day) judges the current
step on the labelled predictions served since the step began (tx_datetime after `step_started`, the latest
transaction served when the step was applied), with the design the rollout started with (its steps,
`min_labelled`, `min_customers`, primary metric and guardrails, each with a tolerance: kept in its state). A
metric's harm is the candidate's difference from the champion turned so that positive is worse, with its
always-valid (mSPRT) interval; a metric is judged only once `min_customers` customers in each arm carry it (for the
recall, customers with a matured fraud: an interval over a handful of them is not to be trusted). The tick:
- **aborts** on a sample ratio mismatch (customers per arm against the step's shares) or a breach: the interval of
  the primary metric's or a guardrail's harm lies wholly above its tolerance. The candidate's share goes to 0, the
  champion is untouched;
- **advances** when every arm has `min_labelled` matured labelled transactions, every guardrail its
  `min_customers` (and the primary metric too at the shadow step), and nothing is breached; the last step, to
  100 %, asks more: every guardrail's interval wholly below its tolerance (the candidate shown to do no harm beyond
  it). It makes the candidate champion (the rollout ends `promoted`);
- **waits** otherwise, saying what is missing.
The shadow step (0 %) is where the outcomes are judged: every customer's transactions are scored by both models
(pairs), so the fraud caught rests on tens of customers a day; its checks are the outcome metrics (the shadow's
latency is not comparable, and its features are the served ones). The split steps then show that serving the
candidate does no harm: the guardrails (decline rates, latency, failures) rest on plentiful rows, and a step stops
a candidate that is clearly worse (the deterioration test) without waiting for a proof of no harm its few customers
cannot give; the proof is asked where it can be had, before the candidate serves everyone. The primary metric is
judged at a split step once its customers are there (at 1 % of the default world, a customer with a fraud a day)
and aborts when shown worse; it is never required proven within its tolerance (its few frauds a day would hold a
rollout for months). Without a shadow step, a clearly worse candidate is caught when its customers' frauds are.

The intervals are always valid, so a tick may look every day; each step is a test of its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import polars as pl

from fraud_detection.experiments.analysis import METRICS, analyze, utc_column
from fraud_detection.experiments.shadow import shadow_report
from fraud_detection.experiments.split import ROLLOUT as ROLLOUT_KIND
from fraud_detection.experiments.split import refuse_if_running, resolve
from fraud_detection.registry.gate import CHALLENGER, CHAMPION
from fraud_detection.registry.registry import ROLLOUT, RUNNING, RegistryError

if TYPE_CHECKING:
    from fraud_detection.experiments.params import ExperimentParams, RolloutParams
    from fraud_detection.registry.registry import AliasEvent, ModelRegistry

log = logging.getLogger(__name__)
ABORTED, PROMOTED = "aborted", "promoted"  # how a rollout ends (RUNNING while it runs)
START, STEP, ABORT, PROMOTE = "rollout-start", "rollout-step", "rollout-abort", "rollout-promote"  # its events
ADVANCE, HALT, WAIT = "advance", "abort", "wait"  # what a tick decides


class RolloutError(RegistryError):
    """A rollout command that cannot apply (none running, no champion, the champion as candidate): nothing
    changed. (Another experiment running is `split.ExperimentRunning`.)"""


@dataclass(frozen=True)
class Verdict:
    action: str  # advance | abort | wait
    reasons: list[str]
    checks: list[dict[str, Any]] = field(default_factory=list)  # the primary metric's and each guardrail's harm
    counts: dict[str, Any] = field(default_factory=dict)  # labelled rows per arm (pairs at the shadow step)
    srm: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return {"action": self.action, "reasons": self.reasons, "checks": self.checks,
                "counts": self.counts, "srm": self.srm}  # fmt: skip


def shares_at(percent: int) -> dict[str, float]:
    """The serving shares at a step: the champion the control, the candidate (`challenger`) its percent."""
    return {CHAMPION: 1 - percent / 100, CHALLENGER: percent / 100} if percent else {CHAMPION: 1.0}


def start(registry: ModelRegistry, candidate: str, design: RolloutParams, data_time: datetime | None,
          actor: str) -> dict[str, Any]:  # fmt: skip
    """Start rolling out `candidate` (a version, or an alias such as `challenger`) against the champion with
    `design` (params.yaml `rollout`, kept in the state): it becomes the challenger and serves at the first step.
    `data_time`: the latest transaction served so far (the first step's outcomes are those after it). Returns the
    state."""
    with registry.locked():
        refuse_if_running(registry)
        champion = registry.alias_version(CHAMPION)
        if champion is None:
            raise RolloutError(f"model {registry.name!r} has no champion to roll out against; expected the register "
                               "stage to have made the first model champion")  # fmt: skip
        version = resolve(registry, candidate)
        if version == champion:
            raise RolloutError(f"version {version} is the champion already; expected another version to roll out")
        name = f"rollout-v{version}-{sum(e.action == START for e in registry.history()) + 1}"
        registry.move_locked(CHALLENGER, version, ROLLOUT, actor, f"{name}: the candidate")
        moment = data_time.isoformat() if data_time else None
        steps = list(design.steps)
        state = {"name": name, "kind": ROLLOUT_KIND, "status": RUNNING, "salt": name, "steps": steps, "step": 0,
                 "versions": {CHAMPION: champion, CHALLENGER: version}, "started": moment,
                 "min_labelled": design.min_labelled, "min_customers": design.min_customers,
                 "primary": {"metric": design.primary_metric, "tolerance": design.primary_tolerance},
                 "guardrails": dict(design.guardrails), **_serving(steps[0], moment)}  # fmt: skip
        registry.set_experiment_locked(state, START, actor, f"{name}: {_describe(steps[0])}")
        return state


def tick(registry: ModelRegistry, predictions: pl.DataFrame, experiment: ExperimentParams, label_delay_days: int,
         actor: str) -> tuple[dict[str, Any] | None, Verdict | None]:  # fmt: skip
    """Judge the running rollout's step on `predictions` (the labelled predictions) and act (see the module's
    doc). Returns the state after it and the verdict; the registry's experiment state (None if there never was
    one) and no verdict when no rollout is running."""
    with registry.locked():
        state = registry.experiment()
        if not running(state):
            return state, None
        moved = _aliases_moved(registry, state)
        verdict = Verdict(HALT, [moved]) if moved else judge(predictions, state, experiment, label_delay_days)
        if verdict.action == HALT:
            return _abort(registry, state, actor, "; ".join(verdict.reasons)), verdict
        if verdict.action == ADVANCE:
            return _advance(registry, state, latest_served(predictions), actor, verdict), verdict
        return state, verdict


def abort(registry: ModelRegistry, actor: str, reason: str) -> dict[str, Any]:
    """Stop the running rollout: the candidate's share to 0, the champion untouched."""
    with registry.locked():
        state = registry.experiment()
        if not running(state):
            raise RolloutError("no rollout is running; expected `fraud-detection rollout start CANDIDATE` first")
        return _abort(registry, state, actor, reason)


def events(registry: ModelRegistry, name: str) -> list[AliasEvent]:
    """The history's events of the rollout `name` (its state changes and its alias moves)."""
    return [e for e in registry.history() if (e.experiment or {}).get("name") == name or e.reason.startswith(name)]


def judge(predictions: pl.DataFrame, state: dict[str, Any], experiment: ExperimentParams,
          label_delay_days: int) -> Verdict:  # fmt: skip
    """What a tick would do now with the running step of `state` (pure: nothing is written)."""
    rows = _step_rows(predictions, state)
    percent = state["steps"][state["step"]]
    if percent == 0:
        return _judge_shadow(rows, state, experiment, label_delay_days)
    served = rows.filter(pl.col("role") == "served")
    strangers = sorted(set(served["variant"].unique().to_list()) - set(state["variants"]))
    if strangers:
        return Verdict(HALT, [f"served variants {strangers} are not in the design {state['variants']}"])
    if served.is_empty() or served.filter(pl.col("variant") == CHAMPION).is_empty():
        return Verdict(WAIT, [f"no transaction served by the champion since the step began ({state['step_started']})"])
    report = analyze(served, state["variants"], label_delay_days=label_delay_days, alpha=experiment.alpha,
                     relative_target_effect=experiment.relative_target_effect, srm_threshold=experiment.srm_threshold,
                     bootstrap_replicates=experiment.bootstrap_replicates)  # fmt: skip
    counts = {name: variant["labelled"] for name, variant in report["variants"].items()}
    if report["srm"]["mismatch"]:
        customers = {name: variant["customers"] for name, variant in report["variants"].items()}
        why = (f"sample ratio mismatch: customers {customers} against the shares {state['variants']} "
               f"(p = {report['srm']['p_value']:.2g} < {experiment.srm_threshold})")  # fmt: skip
        return Verdict(HALT, [why], counts=counts, srm=report["srm"])
    by_metric = {row["metric"]: row for row in report["comparisons"] if row["treatment"] == CHALLENGER}
    checks = [_check(role, metric, tolerance, by_metric[metric], "treatment_value", "control_value",
                     min(by_metric[metric]["control_customers"], by_metric[metric]["treatment_customers"]),
                     state["min_customers"]) for role, metric, tolerance in _metrics(state)]  # fmt: skip
    return _verdict(checks, counts, state, report["srm"])


def _judge_shadow(rows: pl.DataFrame, state: dict[str, Any], experiment: ExperimentParams,
                  label_delay_days: int) -> Verdict:  # fmt: skip
    candidate = str(state["versions"][CHALLENGER])
    pairs = rows.filter((pl.col("role") == "served") | (pl.col("model_version") == candidate))
    report = None if pairs.is_empty() else shadow_report(
        pairs, label_delay_days=label_delay_days, alpha=experiment.alpha,
        relative_target_effect=experiment.relative_target_effect, bootstrap_replicates=experiment.bootstrap_replicates,
    )  # fmt: skip
    if report is None or not report["paired"]:
        return Verdict(WAIT, [f"no transaction scored by the shadow (version {candidate}) since the step began"])
    by_metric = {row["metric"]: row for row in report["metrics"]}
    checks = [_check(role, metric, tolerance, by_metric[metric], "shadow_value", "served_value",
                     by_metric[metric]["customers"], state["min_customers"])
              for role, metric, tolerance in _metrics(state) if metric in by_metric]  # fmt: skip
    return _verdict(checks, {"pairs": report["labelled"]}, state, None)


def _metrics(state: dict[str, Any]) -> list[tuple[str, str, float]]:
    """(role, metric, tolerance): the primary metric, then the guardrails."""
    primary = state["primary"]
    return [("primary", primary["metric"], primary["tolerance"]),
            *(("guardrail", metric, tolerance) for metric, tolerance in state["guardrails"].items())]  # fmt: skip


def _check(role: str, metric: str, tolerance: float, row: dict[str, Any], candidate: str, champion: str,
           customers: int, min_customers: int) -> dict[str, Any]:  # fmt: skip
    """The candidate's harm on `metric` (its difference, turned so that positive is worse) with its always-valid
    interval, and the verdict: `breached` (wholly above the tolerance), `clear` (wholly below) or `open` (neither,
    or the estimate rests on fewer than `min_customers` customers in an arm: an interval over a handful of
    customers is not to be trusted; all of them without a caught fraud gives a recall of 0 with no variance)."""
    sign = 1.0 if METRICS[metric][1] == "lower" else -1.0
    low, high = row["sequential_ci_low"], row["sequential_ci_high"]
    harm = None if row["difference"] is None else sign * row["difference"]
    interval = None if low is None or high is None else sorted((sign * low, sign * high))
    if interval is None or customers < min_customers:
        verdict = "open"
    else:
        verdict = "breached" if interval[0] > tolerance else "clear" if interval[1] <= tolerance else "open"
    low, high = interval or (None, None)
    return {"role": role, "metric": metric, "tolerance": tolerance, "candidate": row[candidate],
            "champion": row[champion], "harm": harm, "harm_low": low, "harm_high": high, "customers": customers,
            "verdict": verdict}  # fmt: skip


def _verdict(checks: list[dict[str, Any]], counts: dict[str, int], state: dict[str, Any],
             srm: dict[str, Any] | None) -> Verdict:  # fmt: skip
    """Abort on a breach; else advance once every arm has its labels and every metric its customers (and, to
    promote, every guardrail's harm is shown within its tolerance); else wait."""
    breached = [c for c in checks if c["verdict"] == "breached"]
    if breached:
        return Verdict(HALT, [_breach(c) for c in breached], checks, counts, srm)
    min_labelled, min_customers = state["min_labelled"], state["min_customers"]
    short = {arm: n for arm, n in counts.items() if n < min_labelled}
    shadow_step = state["steps"][state["step"]] == 0  # the primary is judged there, on every customer's pairs
    thin = {c["metric"]: c["customers"] for c in checks
            if c["customers"] < min_customers and (c["role"] == "guardrail" or shadow_step)}  # fmt: skip
    guardrails = [c for c in checks if c["role"] == "guardrail"]
    unproven = [c["metric"] for c in guardrails if c["verdict"] != "clear"] if _promotes(state) else []
    if not short and not thin and not unproven:
        why = "every guardrail's harm shown below its tolerance" if _promotes(state) else "nothing breached"
        return Verdict(ADVANCE, [f"{why}; matured labelled {counts}"], checks, counts, srm)
    reasons = [f"matured labelled transactions {short} below min_labelled {min_labelled}"] if short else []
    reasons += [f"customers carrying {thin} below min_customers {min_customers}"] if thin else []
    reasons += [f"to promote, not yet shown within tolerance: {unproven}"] if unproven else []
    return Verdict(WAIT, reasons, checks, counts, srm)


def _promotes(state: dict[str, Any]) -> bool:
    return state["steps"][state["step"] + 1] == 100


def _breach(check: dict[str, Any]) -> str:
    return (f"{check['metric']} breached: the candidate {check['candidate']:.4g} against the champion "
            f"{check['champion']:.4g}, harm {check['harm']:.4g} (always-valid interval [{check['harm_low']:.4g}, "
            f"{check['harm_high']:.4g}]) beyond the tolerance {check['tolerance']}")  # fmt: skip


def _advance(registry: ModelRegistry, state: dict[str, Any], data_time: datetime | None, actor: str,
             verdict: Verdict) -> dict[str, Any]:  # fmt: skip
    step = state["step"] + 1
    percent, moment = state["steps"][step], data_time.isoformat() if data_time else state["step_started"]
    was = state["steps"][state["step"]]
    if percent == 100:
        candidate = state["versions"][CHALLENGER]
        registry.move_locked(CHAMPION, candidate, ROLLOUT, actor, f"{state['name']}: {was} % -> 100 %, promoted")
        new = {**state, "step": step, "status": PROMOTED, **_serving(None, moment)}
        registry.set_experiment_locked(new, PROMOTE, actor, f"{state['name']}: version {candidate} is champion")
        log.warning("rollout %s: version %s promoted to champion", state["name"], candidate)
        return new
    new = {**state, "step": step, **_serving(percent, moment)}
    reason = f"{state['name']}: {was} % -> {_describe(percent)}; {verdict.counts}"
    registry.set_experiment_locked(new, STEP, actor, reason)
    log.warning("rollout %s: step %s %%", state["name"], percent)
    return new


def _abort(registry: ModelRegistry, state: dict[str, Any], actor: str, reason: str) -> dict[str, Any]:
    new = {**state, "status": ABORTED, **_serving(None, state["step_started"])}
    registry.set_experiment_locked(new, ABORT, actor, f"{state['name']}: aborted at "
                                                      f"{state['steps'][state['step']]} %: {reason}")  # fmt: skip
    log.warning("rollout %s aborted at %s %%: %s", state["name"], state["steps"][state["step"]], reason)
    return new


def _serving(percent: int | None, moment: str | None) -> dict[str, Any]:
    """What serves at a step (None: the rollout is over, the champion alone)."""
    return {"variants": shares_at(percent or 0), "shadow": CHALLENGER if percent == 0 else None,
            "step_started": moment}  # fmt: skip


def _describe(percent: int) -> str:
    return "shadow" if percent == 0 else f"{percent} % of customers"


def running(state: dict[str, Any] | None) -> bool:
    """A rollout runs (not a split experiment, not a finished rollout)."""
    return bool(state) and state["status"] == RUNNING and state.get("kind", ROLLOUT_KIND) == ROLLOUT_KIND


def _aliases_moved(registry: ModelRegistry, state: dict[str, Any]) -> str | None:
    now = {alias: registry.alias_version(alias) for alias in state["versions"]}
    if now != state["versions"]:
        return f"the aliases moved outside the rollout: {now}, expected {state['versions']}"
    return None


def _step_rows(predictions: pl.DataFrame, state: dict[str, Any]) -> pl.DataFrame:
    """The labelled predictions of the step: served (or scored in shadow) after `step_started`."""
    rows = predictions.with_columns(utc_column(predictions.schema))
    if state.get("step_started"):
        rows = rows.filter(pl.col("tx_datetime") > datetime.fromisoformat(state["step_started"]))
    return rows


def latest_served(predictions: pl.DataFrame) -> datetime | None:
    """The latest transaction served (the data's clock: a step's outcomes are those after it)."""
    served = predictions.filter(pl.col("role") == "served")
    return None if served.is_empty() else served.with_columns(utc_column(served.schema))["tx_datetime"].max()
