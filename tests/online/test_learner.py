"""The online learner's guardrails, each planted: inputs outside the training ranges and a batch of departing labels
are held back; a degradation rolls the published model back; a new champion resets it."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import polars as pl
import pytest
import torch

from fraud_detection.features.definitions import FEATURES
from fraud_detection.online.learner import (
    LABEL_RATE,
    OUT_OF_RANGE,
    ROLLED_BACK,
    Checkpoint,
    Examples,
    OnlineLearner,
    Reservoir,
    held_out,
    schema_ranges,
)
from fraud_detection.online.params import OnlineParams
from fraud_detection.registry.candidate import Candidate
from tests.online.conftest import examples_of


def learner_of(champion: Candidate, params: OnlineParams, **options) -> OnlineLearner:
    ranges = schema_ranges(json.loads(champion.tags["feature_schema"]), FEATURES)
    return OnlineLearner(champion.scorer, ranges, params, **options)


def batches(labelled: pl.DataFrame, champion: Candidate, size: int = 2000) -> list[Examples]:
    return [examples_of(labelled.slice(start, size), champion) for start in range(0, labelled.height, size)]


def test_examples_outside_the_training_ranges_are_held_back(small_champion, online_params, labelled):
    learner = learner_of(small_champion, online_params)
    batch = examples_of(labelled.head(500), small_champion)
    x = batch.x.copy()
    x[:7, FEATURES.index("tx_amount")] = 1e7  # far above any training amount
    learner.learn(replace(batch, x=x), int(batch.known_us.max()))
    assert learner.report.held_back[OUT_OF_RANGE] == 7
    assert learner.report.learned + learner.report.held_out == 493


def test_a_batch_whose_fraud_share_departs_from_the_running_rate_is_held_back(small_champion, online_params,
                                                                               labelled):  # fmt: skip
    guarded, unguarded = (learner_of(small_champion, online_params, guarded=g) for g in (True, False))
    clean = batches(labelled, small_champion)
    for batch in clean[:-1]:
        for learner in (guarded, unguarded):
            learner.learn(batch, int(batch.known_us.max()))
    assert guarded.report.held_back[LABEL_RATE] == 0  # the clean batches pass
    last = clean[-1]
    flipped = np.random.default_rng(0).random(len(last)) < 0.3
    poisoned = replace(last, y=np.where(flipped, 1 - last.y, last.y).astype(np.int8))
    learned = guarded.report.learned, unguarded.report.learned
    out_of_range = guarded.report.held_back[OUT_OF_RANGE]
    for learner in (guarded, unguarded):
        learner.learn(poisoned, int(last.known_us.max()))
    out_of_range = guarded.report.held_back[OUT_OF_RANGE] - out_of_range
    assert guarded.report.held_back[LABEL_RATE] == len(last) - out_of_range
    assert guarded.report.learned == learned[0]
    assert unguarded.report.learned > learned[1]


def test_a_planted_degradation_rolls_the_online_model_back_to_its_parent(small_champion, online_params, labelled):
    events = []
    learner = learner_of(small_champion, online_params, on_publish=events.append)
    clean = batches(labelled, small_champion)
    learner.learn(clean[0], int(clean[0].known_us.max()))  # the validation window fills
    root = learner.checkpoint
    while root.parent is not None:
        root = root.parent
    constant = {name: torch.zeros_like(value) for name, value in root.state.items()}  # scores every row alike
    learner.resume_at(Checkpoint(99, constant, root, None))
    learner.learn(clean[1], int(clean[1].known_us.max()))
    assert learner.report.rolled_back == 1
    assert learner.checkpoint is root
    assert events[-1]["action"] == ROLLED_BACK
    assert events[-1]["validation"]["online"] < events[-1]["validation"]["parent"] - online_params.rollback_margin


def test_a_published_update_is_what_serves_and_an_unvalidated_one_is_not(small_champion, online_params, labelled):
    learner = learner_of(small_champion, online_params)
    for batch in batches(labelled, small_champion):
        learner.learn(batch, int(batch.known_us.max()))
    report = learner.report
    assert report.updates == report.published + report.rejected + report.rolled_back
    assert report.published >= 1
    rows = examples_of(labelled.head(300), small_champion)
    served = learner.scorer().predict_proba(rows.x)
    np.testing.assert_allclose(learner.predict(rows.x, rows.trees), served, rtol=1e-6)
    assert not np.allclose(served, small_champion.scorer.predict_proba(rows.x))  # it learned


def test_a_new_champion_resets_the_learner(small_champion, online_params, labelled, small_training_set,
                                           small_train_params):  # fmt: skip
    from fraud_detection.pipelines.train.nodes import train_candidate
    from tests.conftest import changed

    learner = learner_of(small_champion, online_params)
    for batch in batches(labelled, small_champion)[:3]:
        learner.learn(batch, int(batch.known_us.max()))
    new = train_candidate(small_training_set, changed(small_train_params, seed=5, max_epochs=1,
                                                      boosting={"weight": 0.0}), 7, "v1")  # fmt: skip
    learner.reset(new.scorer, schema_ranges(json.loads(new.tags["feature_schema"]), FEATURES))
    assert learner.checkpoint.number == 0
    rows = examples_of(labelled.head(300), new)
    np.testing.assert_allclose(learner.predict(rows.x, rows.trees), new.scorer.predict_proba(rows.x), rtol=1e-6)


def test_the_reservoir_keeps_a_uniform_sample_of_every_example():
    reservoir = Reservoir(1000, 1, seed=0)
    for start in range(0, 20_000, 500):
        ids = np.arange(start, start + 500)
        reservoir.add(Examples(ids[:, None].astype(float), np.zeros(500, np.int8), ids, np.zeros(500, bool),
                               ids, np.zeros(500)))  # fmt: skip
    kept = reservoir.examples.transaction_id
    assert len(kept) == 1000 and reservoir.seen == 20_000
    assert len(np.unique(kept)) == 1000
    assert np.mean(kept < 10_000) == pytest.approx(0.5, abs=0.06)  # the old half as likely as the new


def test_the_validation_share_is_fixed_by_transaction_id():
    ids = np.arange(200_000, dtype=np.int64)
    chosen = held_out(ids, 0.2)
    assert chosen.mean() == pytest.approx(0.2, abs=0.005)
    np.testing.assert_array_equal(held_out(ids[::-1], 0.2), chosen[::-1])
