"""The live online learner (`fraud-detection online-learner run`): the label stream's consumer group `online-learner`
feeding an `OnlineLearner`, each published update a version of the registered model with the alias `online`.

A labelled example is the feature vector that was served (the prediction log's `served` record of the transaction)
with its label: what the model saw, so there is no skew. Events of transactions never served are counted and left;
a transaction is learned once (by `transaction_id`), whatever the stream redelivers. Delivery is at least once:
events are acknowledged after their update, and a learner that starts again first rebuilds its examples' memory
(the reservoir, the validation window, the transactions seen) from what its group acknowledged, then resumes from the
`online` version when it grew from today's champion, else from the champion. A new champion (the retrain) resets it.

Each checkpoint is a registry version with lineage tags: `online.parent_version` (the version it was learned from),
`online.champion_version`, `online.examples` (learned so far), `online.validation` (its figures), `online.offsets`
(the stream position it includes). Its state and counters are saved after every poll (the catalog's
`online_learner_status`; `fraud-detection online-learner status` reads it back).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from fraud_detection.features.definitions import FEATURES, epoch_micros
from fraud_detection.feedback.labels import LabelReader, LabelStream, Receipt
from fraud_detection.models.scorer import FraudScorer
from fraud_detection.online.learner import PUBLISHED, ROLLED_BACK, Checkpoint, Examples, OnlineLearner, schema_ranges
from fraud_detection.online.learner import trees_proba as champion_trees
from fraud_detection.online.params import OnlineParams
from fraud_detection.registry.gate import CHAMPION, ONLINE

log = logging.getLogger(__name__)
GROUP = "online-learner"  # the label stream's consumer group of the online learner
ACTION = "online-update"  # the registry history's action of a published update


@dataclass
class Served:
    """The served feature vectors by transaction id, read from the prediction log as needed."""

    load: Callable[[], pl.DataFrame]  # the prediction log's records (`prediction_records`)
    rows: dict[int, np.ndarray] = field(default_factory=dict)

    def vectors(self, transaction_ids: list[int]) -> dict[int, np.ndarray]:
        if any(t not in self.rows for t in transaction_ids):
            self._refresh()
        return {t: self.rows[t] for t in transaction_ids if t in self.rows}

    def _refresh(self) -> None:
        log_table = self.load()
        if log_table.width == 0:
            return
        missing = [name for name in FEATURES if name not in log_table.columns]
        if missing:
            raise ValueError(f"the prediction log's records lack the features {missing}; expected every one of "
                             f"FEATURES (a log written before they existed cannot teach today's model)")  # fmt: skip
        served = log_table.filter(pl.col("role") == "served").unique("transaction_id", keep="first")
        matrix = served.select(FEATURES).to_numpy().astype(np.float64)
        self.rows = dict(zip(served["transaction_id"].to_list(), matrix, strict=True))


class LiveLearner:
    """The learner behind the `online-learner` commands: `step` polls, learns, acknowledges and publishes."""

    def __init__(self, registry: Any, stream: LabelStream, served: Served, params: OnlineParams,
                 save_status: Callable[[dict[str, Any]], None], actor: str,
                 experiment: tuple[str, str | None] = ("fraud-detection", None)) -> None:  # fmt: skip
        self.registry, self.stream, self.served, self.params = registry, stream, served, params
        self.save_status, self.actor, self.experiment = save_status, actor, experiment
        self.reader: LabelReader = stream.reader(GROUP)
        self.seen: set[int] = set()
        self.counts = {"events": 0, "not_served": 0, "repeated": 0, "resets": 0}
        self.versions: dict[int, int] = {}  # checkpoint number -> registry version
        self._offsets: dict[str, Any] = {}
        self._start()

    # -- set-up
    def _start(self) -> None:
        from fraud_detection.registry.loading import load_model

        champion = load_model(self.registry, CHAMPION)
        self.champion_version, self.champion_tags = champion.version, champion.tags
        scorer = champion.pyfunc.unwrap_python_model().scorer
        if tuple(scorer.features) != FEATURES:
            raise ValueError(f"champion version {champion.version} was trained on other features than today's "
                             f"{len(FEATURES)}; expected a champion registered by `dvc repro`")  # fmt: skip
        ranges = schema_ranges(json.loads(champion.tags["feature_schema"]), FEATURES)
        self.learner = OnlineLearner(scorer, ranges, self.params, on_publish=self._published)
        self.versions = {0: champion.version}
        self._rebuild()
        self._resume_from_online(scorer)

    def _rebuild(self) -> None:
        """What the group acknowledged before a restart, back into the learner's memory (nothing learned again)."""
        events = list(self.reader.acknowledged())
        batch = self._examples(events, count=False)
        if batch is not None:
            self.learner.remember(batch)

    def _resume_from_online(self, champion: FraudScorer) -> None:
        """The `online` version, when it grew from today's champion, is where learning resumes."""
        from fraud_detection.registry.loading import load_model

        version = self.registry.alias_version(ONLINE)
        if version is None or version == self.champion_version:
            return
        online = load_model(self.registry, version)
        if online.tags.get("online.champion_version") != str(self.champion_version):
            return
        state = online.pyfunc.unwrap_python_model().scorer.network.state_dict()
        number = int(online.tags.get("online.checkpoint", "1"))
        self.learner.resume_at(Checkpoint(number, state, self.learner.checkpoint, None))
        self.versions[number] = version

    # -- the loop
    def step(self) -> int:
        """One poll: at most `update_every` events learned (one update) and acknowledged; returns how many were read."""
        self._reset_on_new_champion()
        events, receipt = self.reader.poll(self.params.update_every)
        if not events:
            return 0
        self._offsets = _receipt_json(receipt)
        batch = self._examples(events, count=True)
        if batch is not None:
            self.learner.learn(batch, int(batch.known_us.max()))
        self.reader.ack(receipt)
        self.write_status()
        return len(events)

    def run(self, follow_s: float | None, progress: Callable[[str], None] = print) -> None:
        while True:
            read = self.step()
            if read:
                report = self.learner.report
                progress(f"online learner: {self.counts['events']:,} events read, {report.learned:,} learned, "
                         f"{report.published} updates published, {report.rolled_back} rolled back")  # fmt: skip
                continue
            self.write_status()
            if follow_s is None:
                return
            time.sleep(follow_s)

    def _reset_on_new_champion(self) -> None:
        version = self.registry.alias_version(CHAMPION)
        if version is not None and version != self.champion_version:
            log.info("a new champion (version %s): the online learner restarts from it", version)
            self.counts["resets"] += 1
            from fraud_detection.registry.loading import load_model

            champion = load_model(self.registry, version)
            self.champion_version, self.champion_tags = champion.version, champion.tags
            scorer = champion.pyfunc.unwrap_python_model().scorer
            self.learner.reset(scorer, schema_ranges(json.loads(champion.tags["feature_schema"]), FEATURES))
            self.versions = {0: champion.version}
            self.registry.move(
                ONLINE,
                champion.version,
                ACTION,
                self.actor,
                f"a new champion (version {champion.version}): the online model restarts from it",
            )

    def _examples(self, events: list[dict[str, Any]], count: bool) -> Examples | None:
        """The events' examples: each transaction once, served ones only, with the vector that was served."""
        fresh = []
        for event in events:
            if event["transaction_id"] in self.seen:
                self.counts["repeated"] += count
                continue
            fresh.append(event)
        ids = [event["transaction_id"] for event in fresh]
        vectors = self.served.vectors(ids)
        kept = [event for event in fresh if event["transaction_id"] in vectors]
        if count:
            self.counts["events"] += len(events)
            self.counts["not_served"] += len(fresh) - len(kept)
        self.seen.update(event["transaction_id"] for event in kept)
        if not kept:
            return None
        x = np.stack([vectors[event["transaction_id"]] for event in kept])
        return Examples(x, np.array([event["tx_fraud"] for event in kept], dtype=np.int8),
                        np.array([event["transaction_id"] for event in kept], dtype=np.int64),
                        np.array([event["source"] == "investigation" for event in kept]),
                        np.array([epoch_micros(datetime.fromisoformat(event["known_at"])) for event in kept]),
                        champion_trees(self.learner.champion, x))  # fmt: skip

    # -- the registry
    def _published(self, event: dict[str, Any]) -> None:
        checkpoint: Checkpoint = event["checkpoint"]
        if event["action"] == ROLLED_BACK:
            version = self.versions[checkpoint.number]
            self.registry.move(ONLINE, version, "rollback", self.actor,
                               f"online validation fell below checkpoint {checkpoint.number} by more than "
                               f"{self.params.rollback_margin}: {event['validation']}")  # fmt: skip
            return
        assert event["action"] == PUBLISHED
        parent = self.versions.get(checkpoint.parent.number) if checkpoint.parent else None
        tags = {
            "online.checkpoint": str(checkpoint.number),
            "online.parent_version": str(parent),
            "online.champion_version": str(self.champion_version),
            "online.examples": str(event["report"]["examples_learned"]),
            "online.validation": json.dumps(event["validation"]),
            "online.offsets": json.dumps(self._offsets),
            "feature_schema": self.champion_tags["feature_schema"],
            "feature_service": self.champion_tags.get("feature_service", ""),
            "feature_service_version": self.champion_tags.get("feature_service_version", ""),
        }
        version = register_scorer(self.registry, self.learner.scorer(), tags, *self.experiment)
        self.versions[checkpoint.number] = version
        self.registry.move(ONLINE, version, ACTION, self.actor,
                           f"checkpoint {checkpoint.number}: validation {event['validation']}")  # fmt: skip

    # -- status
    def status(self) -> dict[str, Any]:
        return {"at": datetime.now(UTC).isoformat(timespec="seconds"), "champion_version": self.champion_version,
                "online_version": self.registry.alias_version(ONLINE), "checkpoint": self.learner.checkpoint.number,
                **self.counts, **self.learner.report.as_json()}  # fmt: skip

    def write_status(self) -> None:
        self.save_status(self.status())


def register_scorer(registry: Any, scorer: FraudScorer, tags: dict[str, str], experiment: str,
                    artifact_location: str | None) -> int:  # fmt: skip
    """A scorer logged as an MLflow run (the same pyfunc as a trained candidate) and registered; its version."""
    import pandas as pd

    from fraud_detection.registry.candidate import log_model_run

    with tempfile.TemporaryDirectory() as folder:
        scorer.save(Path(folder) / "scorer")
        example = pd.DataFrame([scorer.neutral_row()], columns=list(scorer.features))
        run = log_model_run(Path(folder) / "scorer", registry.tracking_uri, experiment, {}, {}, tags, example,
                            artifact_location=artifact_location)  # fmt: skip
    return int(registry.register(run, tags).version)


def stream_lag(stream: LabelStream, reader: LabelReader) -> int:
    """Label events published and not yet acknowledged by the group."""
    return sum(1 for _ in stream.events()) - sum(1 for _ in reader.acknowledged())


def _receipt_json(receipt: Receipt) -> dict[str, Any]:
    if receipt.offsets is not None:
        return receipt.offsets
    return {"last_id": receipt.ids[-1].decode() if receipt.ids else None}
