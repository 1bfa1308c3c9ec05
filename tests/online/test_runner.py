"""The live online learner on a real MLflow registry and label files: checkpoints become `online` versions with
their lineage, a crash loses and repeats no event, a new champion resets the learner."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from fraud_detection.features.definitions import FEATURES
from fraud_detection.feedback.labels import LabelFiles, LabelRedisStream, LabelStream, label_event
from fraud_detection.online.runner import ACTION, GROUP, LiveLearner, Served, stream_lag
from fraud_detection.registry.candidate import CandidateDataset
from fraud_detection.registry.promotion import force_promote
from fraud_detection.registry.registry import ModelRegistry, RegistryAddress
from fraud_detection.serving.prediction_log import records_frame
from tests.conftest import changed

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def registry(tmp_path, small_champion) -> ModelRegistry:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    CandidateDataset(str(tmp_path / "candidate"), uri, "test", str(tmp_path / "artifacts")).save(small_champion)
    model = RegistryAddress(uri, str(tmp_path / "registry.lock")).open("fraud-detector", create=True)
    version = int(model.register(small_champion.run, small_champion.tags).version)
    force_promote(model, version, "tests", "the champion")
    return model


@pytest.fixture(params=["files", pytest.param("redis", marks=pytest.mark.redis)])
def stream(request, tmp_path) -> Iterator[LabelStream]:
    """The label stream: files (default) or a Redis stream of the test's own (production)."""
    if request.param == "files":
        yield LabelFiles(tmp_path / "labels")
        return
    import redis

    name = f"fraud_detection:test-online-{uuid.uuid4().hex[:8]}"
    yield LabelRedisStream(REDIS_URL, name)
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(name)
    client.close()


@pytest.fixture
def world(stream: LabelStream, labelled: pl.DataFrame) -> tuple[LabelStream, Served, int]:
    """The last 12,000 labelled rows served (their feature vectors logged), then all their labels published, and
    300 labels of transactions never served."""
    rows = labelled.tail(12_000)
    records = [{"transaction_id": row["transaction_id"], "role": "served", "features": {n: row[n] for n in FEATURES},
                "tx_datetime": row["tx_datetime"].isoformat()} for row in rows.iter_rows(named=True)]  # fmt: skip
    labels = stream
    unserved = [label_event(10**9 + i, 0, datetime(2018, 6, 1, tzinfo=UTC), "delayed") for i in range(300)]
    labels.write([label_event(row["transaction_id"], row["tx_fraud"], row["tx_datetime"] + timedelta(days=7),
                              "delayed") for row in rows.iter_rows(named=True)] + unserved)  # fmt: skip
    return labels, Served(lambda: records_frame(records)), rows.height


def live(registry, world, online_params, statuses: list | None = None) -> LiveLearner:
    labels, served, _ = world
    params = changed(online_params, update_every=3000)
    save = statuses.append if statuses is not None else (lambda status: None)
    return LiveLearner(registry, labels, served, params, save, "tests", ("test", None))


def test_published_updates_are_online_versions_with_their_lineage(registry, world, online_params):
    statuses: list[dict[str, Any]] = []
    learner = live(registry, world, online_params, statuses)
    learner.run(None, progress=lambda line: None)
    status = statuses[-1]
    assert status["updates_published"] >= 1 and status["not_served"] == 300
    assert status["examples_learned"] + status["examples_held_out"] + sum(status["held_back"].values()) == world[2]
    online = registry.version(registry.alias_version("online"))
    assert online.tags["online.champion_version"] == str(registry.alias_version("champion"))
    assert int(online.tags["online.examples"]) > 0 and "update" in online.tags["online.validation"]
    moves = [event for event in registry.history() if event.alias == "online"]
    assert [event.action for event in moves] == [ACTION] * status["updates_published"]
    assert stream_lag(world[0], world[0].reader(GROUP)) == 0


def test_a_crash_before_the_acknowledgement_repeats_no_event_and_loses_none(registry, world, online_params,
                                                                            monkeypatch):  # fmt: skip
    reader = type(world[0].reader(GROUP))
    acks, original = [], reader.ack

    def crashing_ack(self, receipt):
        if len(acks) == 2:
            raise KeyboardInterrupt  # the process dies after learning its third batch, before acknowledging it
        acks.append(receipt)
        original(self, receipt)

    monkeypatch.setattr(reader, "ack", crashing_ack)
    first = live(registry, world, online_params)
    with pytest.raises(KeyboardInterrupt):
        first.run(None, progress=lambda line: None)
    monkeypatch.setattr(reader, "ack", original)
    second = live(registry, world, online_params)
    assert len(second.seen) == 6000  # the two batches acknowledged before the crash, remembered
    second.run(None, progress=lambda line: None)
    assert len(second.seen) == world[2]  # every served transaction's label, once
    assert second.counts["repeated"] == 0
    report = second.learner.report
    assert report.learned + report.held_out + sum(report.held_back.values()) == world[2] - 6000
    assert stream_lag(world[0], world[0].reader(GROUP)) == 0


def test_a_new_champion_resets_the_online_learner(registry, world, online_params, small_training_set,
                                                  small_train_params, tmp_path):  # fmt: skip
    from fraud_detection.pipelines.train.nodes import train_candidate

    learner = live(registry, world, online_params)
    learner.step()
    new = train_candidate(small_training_set, changed(small_train_params, seed=3, max_epochs=1,
                                                      boosting={"weight": 0.0}), 7, "v1")  # fmt: skip
    CandidateDataset(str(tmp_path / "new"), registry.tracking_uri, "test", str(tmp_path / "artifacts")).save(new)
    version = int(registry.register(new.run, new.tags).version)
    force_promote(registry, version, "tests", "the retrain")
    learner.step()
    assert learner.counts["resets"] == 1 and learner.champion_version == version
    assert learner.learner.checkpoint.number in (0, 1)  # from the new champion (maybe one update on it since)
    assert registry.version(registry.alias_version("online")).tags.get("online.champion_version", str(version)) == (
        str(version)
    )


def test_a_degraded_online_version_is_rolled_back_to_its_parent_in_the_registry(registry, world, online_params):
    import torch

    from fraud_detection.online.learner import PUBLISHED, Checkpoint

    learner = live(registry, world, online_params)
    learner.step()  # the window fills; maybe a first checkpoint
    parent = learner.learner.checkpoint
    parent_version = learner.versions[parent.number]
    constant = {name: torch.zeros_like(value) for name, value in parent.state.items()}  # scores every row alike
    planted = Checkpoint(parent.number + 1, constant, parent, None)
    learner.learner.resume_at(planted)
    learner._published({"action": PUBLISHED, "checkpoint": planted, "validation": None,
                        "report": learner.learner.report.as_json()})  # as if it had been published  # fmt: skip
    assert registry.alias_version("online") not in (None, parent_version)
    learner.step()
    assert learner.learner.report.rolled_back == 1
    assert registry.alias_version("online") == parent_version
    last = [event for event in registry.history() if event.alias == "online"][-1]
    assert last.action == "rollback" and "fell below checkpoint" in last.reason
