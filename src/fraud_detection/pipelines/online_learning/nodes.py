"""Nodes of the `online_learning` stage: the prequential proof of the online learner (online/replay.py) on replayed
days after the data, the four models side by side on the same stream, then the same under a burst of poisoned
labels."""

from __future__ import annotations

import json
import logging
from typing import Any

import polars as pl

from fraud_detection.features.definitions import FEATURES
from fraud_detection.feedback.params import FeedbackParams
from fraud_detection.models.scorer import FraudScorer
from fraud_detection.online.contenders import RiverReference, Split, Static
from fraud_detection.online.learner import OnlineLearner, schema_ranges
from fraud_detection.online.params import OnlineParams
from fraud_detection.online.replay import MICROS_PER_DAY, Stream, poisoned, prequential, quality, replay_stream
from fraud_detection.registry.registry import RegistryAddress
from fraud_detection.simulation.params import SimulateParams
from fraud_detection.simulation.simulator import SimulationConfig

log = logging.getLogger(__name__)
ONLINE, UNGUARDED, SPLIT, STATIC, RIVER = "online", "online_unguarded", "online_split", "static", "river_logistic"


def load_champion(model_registry: RegistryAddress, promotion: dict[str, Any],
                  model_name: str) -> tuple[FraudScorer, list[dict[str, Any]]]:  # fmt: skip
    """The champion's scorer (trained on today's features) and its training ranges (`feature_schema` tag)."""
    from fraud_detection.registry.loading import load_model

    champion = load_model(model_registry.open(model_name), "champion")
    log.info("online_learning: champion version %s (after the register stage: %s)", champion.version,
             promotion.get("aliases", {}).get("champion"))  # fmt: skip
    scorer = champion.pyfunc.unwrap_python_model().scorer
    if tuple(scorer.features) != FEATURES:
        raise ValueError(f"champion version {champion.version} was trained on {len(scorer.features)} features; "
                         f"online learning updates a model of today's {len(FEATURES)}: expected `dvc repro` to have "
                         "registered one")  # fmt: skip
    return scorer, json.loads(champion.tags["feature_schema"])


def replay(transactions: pl.DataFrame, champion: tuple[FraudScorer, list], simulate: SimulateParams,
           online: OnlineParams, label_delay_days: int, feedback: FeedbackParams,
           ingest_source: str) -> Stream:  # fmt: skip
    if ingest_source != "simulate":
        raise ValueError(f"params.yaml ingest.source={ingest_source!r}: the online_learning stage replays days of the "
                         "simulator's world after the data; expected `simulate`")  # fmt: skip
    return replay_stream(transactions, champion[0], SimulationConfig.from_params(simulate), online.eval,
                         label_delay_days, feedback.investigations_per_day,
                         feedback.investigation_lookback_days)  # fmt: skip


def compare(stream: Stream, champion: tuple[FraudScorer, list], online: OnlineParams,
            top_k: int) -> dict[str, Any]:  # fmt: skip
    """The four models (and the split) on the stream; then the online model, guarded and not, under poisoning."""
    scorer, ranges = champion[0], schema_ranges(champion[1], FEATURES)
    seed = online.eval.seed

    def learner(guarded: bool = True) -> OnlineLearner:
        return OnlineLearner(scorer, ranges, online, guarded=guarded, seed=seed)

    models = {STATIC: Static(scorer), ONLINE: _chosen(learner, online), UNGUARDED: learner(guarded=False),
              SPLIT if not online.split else "online_pooled": _other(learner, online),
              RIVER: RiverReference(FEATURES, stream.warmup_x, stream.warmup_y)}  # fmt: skip
    scores = prequential(stream, models, update_every=online.update_every)
    report = {"first_day": stream.first_day, "days": online.eval.days, "transactions": stream.transactions.height,
              "labels": _label_counts(stream.labels), "models": {}}  # fmt: skip
    for name, model in models.items():
        report["models"][name] = {**quality(stream, scores[name], top_k), **_updates(model)}
        log.info("%s: %s", name, report["models"][name]["all"])
    report["poisoning"] = _poisoning(stream, scores[ONLINE], learner, online, top_k)
    return report


def _chosen(learner: Any, online: OnlineParams) -> Any:
    """The online model as params.yaml chooses it: one learner on the pooled stream, or the split."""
    return Split(learner(), learner(), online.split_alpha) if online.split else learner()


def _other(learner: Any, online: OnlineParams) -> Any:
    """The choice not taken, measured beside it."""
    return learner() if online.split else Split(learner(), learner(), online.split_alpha)


def _poisoning(stream: Stream, clean: Any, learner: Any, online: OnlineParams, top_k: int) -> dict[str, Any]:
    first_us = int(stream.transactions["tx_us"].min()) // MICROS_PER_DAY * MICROS_PER_DAY
    labels, flipped = poisoned(stream.labels, first_us, online.eval.poison)
    models = {"guarded": _chosen(learner, online), "unguarded": learner(guarded=False)}
    scores = prequential(stream, models, labels, update_every=online.update_every)
    after = (stream.transactions["day"] > online.eval.poison.day).to_numpy()
    section: dict[str, Any] = {"day": online.eval.poison.day, "fraction": online.eval.poison.fraction,
                               "labels_flipped": flipped}  # fmt: skip
    for name, values in {"clean": clean, **scores}.items():
        figures = quality(_subset(stream, after), values[after], top_k)["all"]
        section[name] = {"average_precision": figures["average_precision"]}
    for name, model in models.items():
        section[name] |= _updates(model)
    return section


def _subset(stream: Stream, rows: Any) -> Stream:
    return Stream(stream.transactions.filter(pl.Series(rows)), stream.x[rows], stream.trees[rows], stream.labels,
                  stream.warmup_x, stream.warmup_y, stream.first_day)  # fmt: skip


def _updates(model: Any) -> dict[str, Any]:
    report = model.report
    if report is None:
        return {"updates_published": 0, "updates_rolled_back": 0}
    return {"updates_published": report.published, "updates_rolled_back": report.rolled_back,
            "learner": report.as_json()}  # fmt: skip


def _label_counts(labels: pl.DataFrame) -> dict[str, int]:
    investigation = int(labels["investigation"].sum())
    return {"delayed": labels.height - investigation, "investigation": investigation}


def daily_average_precision(report: dict[str, Any]) -> dict[str, pl.DataFrame]:
    """The plot's data: each model's average precision per replayed day (dvc.yaml `plots`)."""
    rows = [{"day": entry["day"], **{name: model["daily"][i]["average_precision"]
                                     for name, model in report["models"].items()}}
            for i, entry in enumerate(next(iter(report["models"].values()))["daily"])]  # fmt: skip
    return {"daily_average_precision": pl.DataFrame(rows)}
