"""Nodes of the `register` stage: the candidate becomes a version of the registered model with its full lineage,
and the promotion gate decides its alias (champion or challenger) against the live champion, both scored on the
days the train stage held out. Inside a DVC experiment (`dvc exp run`) the candidate is registered, tagged with the
experiment's name, and gated, but the verdict is only recorded: no alias moves."""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from fraud_detection.evaluation.protocol import labelled_window
from fraud_detection.registry.candidate import Candidate
from fraud_detection.registry.params import RegisterParams
from fraud_detection.registry.promotion import gate_only, promote_gated, report
from fraud_detection.registry.registry import ModelRegistry, RegistryAddress, default_actor

BACKTEST_MODEL = "candidate"  # the backtest's name for our model (the others are baselines)
EXPERIMENT_TAG = "experiment"  # a version registered inside a DVC experiment: the experiment's name


def gate_window(training_set: pl.DataFrame, holdout_days: int, label_delay_days: int) -> pl.DataFrame:
    """The latest `train.holdout_days` labelled days: the most recent test window, unseen by the candidate."""
    return labelled_window(training_set, holdout_days, label_delay_days)


def version_lineage(candidate: Candidate, training_set_md5: str, backtest_metrics: dict[str, Any]) -> dict[str, str]:
    """Everything a version carries about what produced it: the candidate's tags (git commit, data and params
    hashes, feature service and its version, feature schema, library versions, training window), the training
    set's DVC hash, training figures, model size and the backtest's figures for this model."""
    backtest = backtest_metrics["backtest"][BACKTEST_MODEL]
    return {
        **candidate.tags,
        "training_set_md5": training_set_md5,
        **{name: repr(candidate.metrics[name]) for name in ("training_seconds", "model_bytes",
                                                            "best_val_average_precision", "window_rows")},
        **{f"backtest.{metric}": repr(figures["mean"]) for metric, figures in backtest.items()},
        "backtest": json.dumps(backtest, separators=(",", ":")),
    }  # fmt: skip


def register_and_gate(
    candidate: Candidate,
    lineage: dict[str, str],
    window: pl.DataFrame,
    registry: RegistryAddress,
    params: RegisterParams,
) -> dict[str, Any]:
    """Register the candidate (once: a re-run finds its version), gate it, move its alias; the decision record.
    Inside a DVC experiment: register (tagged `experiment`) and gate, move nothing."""
    model = registry.open(params.model_name, create=True)
    span = {"start": str(window["tx_datetime"].min().date()), "end": str(window["tx_datetime"].max().date()),
            "rows": window.height, "frauds": int(window["tx_fraud"].sum())}  # fmt: skip
    if model.dvc_experiment is not None:
        return _register_in_experiment(model, candidate, lineage, window, span, params)
    version = int(model.register(candidate.run, lineage).version)
    decision, champion_before, events = promote_gated(
        model,
        version,
        window,
        f"{span['start']}..{span['end']}",
        params.gate,
        actor=f"register stage ({default_actor()})",
        promotion=params.promotion,
    )
    return report(model, version, decision, champion_before, events, span)


def _register_in_experiment(
    model: ModelRegistry,
    candidate: Candidate,
    lineage: dict[str, str],
    window: pl.DataFrame,
    span: dict[str, Any],
    params: RegisterParams,
) -> dict[str, Any]:
    """The candidate's version tagged with the experiment, its verdict as tags only. A version registered before,
    outside this experiment (its training stage did not re-run), keeps its tags: the verdict is in the report only."""
    experiment = model.dvc_experiment
    registered = model.register(candidate.run, {**lineage, EXPERIMENT_TAG: experiment})
    version, own = int(registered.version), registered.tags.get(EXPERIMENT_TAG) == experiment
    decision, champion_before = gate_only(model, version, window, f"{span['start']}..{span['end']}", params.gate,
                                          promotion=params.promotion, tag=own)  # fmt: skip
    return {**report(model, version, decision, champion_before, [], span),
            "experiment": {"name": experiment, "applied": False, "version_registered_here": own}}  # fmt: skip
