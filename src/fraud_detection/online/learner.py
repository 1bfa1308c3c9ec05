"""The online learner: a copy of the champion's network that keeps learning from labelled served examples, behind
guardrails. The champion's trees stay as trained, so each example's trees probability is computed once.

`OnlineLearner.learn(batch, now_us)` takes one micro-batch (examples whose labels are known by `now_us`):
1. input validation (guarded): an example outside the champion's training range of a feature (its `feature_schema`
   tag, widened by `range_margin` of the range) is held back (`out_of_range`); a label source's part of the batch
   whose fraud share departs from that source's running rate by more than `max_label_rate_sigma` binomial standard
   deviations is held back whole (`label_rate`), once `rate_warmup` examples of the source set the rate;
2. a share of the examples (`validation_share`, by a hash of the transaction id) is held out of learning: the shadow
   validation window keeps those known in the last `validation_days`;
3. the rest, with `replay_ratio` as many older examples drawn from a reservoir (a uniform sample of all learned),
   take Adam steps at `learning_rate / (1 + lr_decay * updates)`;
4. shadow validation (guarded): the update, the published model and the champion are scored on the window (average
   precision). First the rollback: if the published model has fallen below its parent checkpoint by
   `rollback_margin`, the parent is published again and learning resumes from it. Else the update is published when
   it is within `publish_tolerance` of both the published model and the champion; an update that falls below the
   published model by `rollback_margin` is dropped and learning resumes from the published model.
   Unguarded: every update is published.

What is published is what serves (`scorer()`); `on_publish(event)` lets the live learner register each checkpoint.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from fraud_detection.evaluation.metrics import average_precision
from fraud_detection.features.definitions import MICROS_PER_DAY
from fraud_detection.models.scorer import FraudScorer
from fraud_detection.online.params import OnlineParams

OUT_OF_RANGE, LABEL_RATE = "out_of_range", "label_rate"
PUBLISHED, ROLLED_BACK, REJECTED = "published", "rolled_back", "rejected"
HASH_MULTIPLIER = 0x9E3779B1  # Knuth's multiplicative hash: a transaction id's validation membership


@dataclass(frozen=True)
class Examples:
    """Labelled examples, row-aligned: the served feature vectors (FEATURES order), labels, transaction ids, whether
    the label came from an investigation, when it became known, and the champion trees' probability."""

    x: np.ndarray
    y: np.ndarray
    transaction_id: np.ndarray
    investigation: np.ndarray
    known_us: np.ndarray
    trees: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def take(self, rows: np.ndarray | slice) -> Examples:
        return Examples(*(getattr(self, name)[rows] for name in FIELDS))

    @classmethod
    def concat(cls, parts: list[Examples]) -> Examples:
        return cls(*(np.concatenate([getattr(part, name) for part in parts]) for name in FIELDS))

    @classmethod
    def empty(cls, n_features: int) -> Examples:
        return cls(np.empty((0, n_features)), np.empty(0, np.int8), np.empty(0, np.int64), np.empty(0, bool),
                   np.empty(0, np.int64), np.empty(0))  # fmt: skip


FIELDS = ("x", "y", "transaction_id", "investigation", "known_us", "trees")


def held_out(transaction_id: np.ndarray, share: float) -> np.ndarray:
    """The validation examples: a fixed `share` of transaction ids, whichever learner or run sees them."""
    hashed = (transaction_id.astype(np.uint64) * np.uint64(HASH_MULTIPLIER)) % np.uint64(2**32)
    return hashed < np.uint64(share * 2**32)


class Reservoir:
    """A uniform sample of every example added (Vitter's algorithm R), `capacity` at most."""

    def __init__(self, capacity: int, n_features: int, seed: int) -> None:
        self.capacity, self.seen, self._rng = capacity, 0, np.random.default_rng(seed)
        self.examples = Examples.empty(n_features)

    def add(self, batch: Examples) -> None:
        room = self.capacity - len(self.examples)
        if room > 0:
            self.examples = Examples.concat([self.examples, batch.take(slice(0, room))])
        rest = batch.take(slice(max(room, 0), None))
        if len(rest):
            seen = self.seen + max(room, 0) + np.arange(1, len(rest) + 1)
            slots = (self._rng.random(len(rest)) * seen).astype(np.int64)
            keep = slots < self.capacity
            for name in FIELDS:
                getattr(self.examples, name)[slots[keep]] = getattr(rest, name)[keep]
        self.seen += len(batch)

    def sample(self, n: int) -> Examples:
        if n == 0 or not len(self.examples):
            return self.examples.take(slice(0, 0))
        return self.examples.take(self._rng.integers(0, len(self.examples), size=n))


class RunningRate:
    """A label source's fraud share, forgetting half its past every `halflife` examples."""

    def __init__(self, halflife: int) -> None:
        self._decay, self.frauds, self.total, self.seen = 0.5 ** (1 / halflife), 0.0, 0.0, 0

    def deviation(self, frauds: int, n: int) -> float:
        """How many binomial standard deviations `frauds` of `n` lies from the running rate."""
        rate = min(max(self.frauds / self.total, 1e-4), 1 - 1e-4)
        return (frauds - n * rate) / np.sqrt(n * rate * (1 - rate))

    def add(self, frauds: int, n: int) -> None:
        kept = self._decay**n
        self.frauds, self.total, self.seen = self.frauds * kept + frauds, self.total * kept + n, self.seen + n


@dataclass
class Report:
    """What the learner did: counted for its status and `/metrics`."""

    updates: int = 0
    published: int = 0
    rolled_back: int = 0
    rejected: int = 0  # updates shadow validation did not publish
    learned: int = 0  # examples learned (replayed ones not counted)
    held_out: int = 0  # examples kept for validation
    held_back: Counter = field(default_factory=Counter)  # examples not learned, by reason
    last_validation: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return {"updates": self.updates, "updates_published": self.published,
                "updates_rolled_back": self.rolled_back, "updates_rejected": self.rejected,
                "examples_learned": self.learned, "examples_held_out": self.held_out,
                "held_back": dict(sorted(self.held_back.items())), "last_validation": self.last_validation}  # fmt: skip


@dataclass(frozen=True)
class Checkpoint:
    """A published state of the network, with its parent (the checkpoint it was validated against)."""

    number: int
    state: dict[str, torch.Tensor]
    parent: Checkpoint | None
    validation: dict[str, Any] | None


class OnlineLearner:
    """One online model: the champion's preprocessing, network (updated) and trees (kept), `guarded` or not."""

    def __init__(self, champion: FraudScorer, ranges: np.ndarray | None, params: OnlineParams, guarded: bool = True,
                 seed: int = 0, on_publish: Callable[[dict[str, Any]], None] | None = None) -> None:  # fmt: skip
        self.champion, self.params, self.guarded, self.on_publish = champion, params, guarded, on_publish
        self.ranges = _widened(ranges, params.range_margin) if ranges is not None else None
        n_features = len(champion.features)
        torch.manual_seed(seed)
        self.reservoir = Reservoir(params.replay_capacity, n_features, seed)
        self.window = Examples.empty(n_features)
        self.rates = {False: RunningRate(params.rate_halflife), True: RunningRate(params.rate_halflife)}
        self.report = Report()
        self._rng = np.random.default_rng(seed)
        self._root = Checkpoint(0, _detached(champion.network.state_dict()), None, None)
        self._resume(self._root)
        self.checkpoint = self._root

    # -- scoring
    def scorer(self) -> FraudScorer:
        """The published model, as serving would load it: preprocessing, the published network, the trees."""
        c = self.champion
        return FraudScorer(c.standardizer, c.spec, self.checkpoint.state, c.trees, c.trees_weight)

    def predict(self, x: np.ndarray, trees: np.ndarray) -> np.ndarray:
        """The published model's probabilities (`trees`: the champion trees' probabilities of the same rows)."""
        return self._blend(self._network(self.checkpoint.state, x), trees)

    # -- learning
    def learn(self, batch: Examples, now_us: int) -> None:
        """One micro-batch of examples known by `now_us`: validated, split, learned, validated again."""
        if self.guarded:
            batch = self._checked(batch)
        validation = held_out(batch.transaction_id, self.params.validation_share)
        self.window = Examples.concat([self.window, batch.take(validation)])
        self.window = self.window.take(self.window.known_us > now_us - self._window_us)
        self.report.held_out += int(validation.sum())
        train = batch.take(~validation)
        if not len(train):
            return
        replay = self.reservoir.sample(round(self.params.replay_ratio * len(train)))
        self._step(Examples.concat([train, replay]))
        self.reservoir.add(train)
        self._count_rates(train)
        self.report.updates += 1
        self.report.learned += len(train)
        if self.guarded:
            self._judge(now_us)
        else:
            self._publish(now_us, None)

    def remember(self, batch: Examples) -> None:
        """Examples learned before a restart, back into the reservoir, the rates and the validation window (no
        update)."""
        validation = held_out(batch.transaction_id, self.params.validation_share)
        self.window = Examples.concat([self.window, batch.take(validation)])
        self.window = self.window.take(self.window.known_us > batch.known_us.max() - self._window_us)
        train = batch.take(~validation)
        self.reservoir.add(train)
        self._count_rates(train)

    def resume_at(self, checkpoint: Checkpoint) -> None:
        """Learning resumes from a checkpoint published before a restart."""
        self.checkpoint = checkpoint
        self._resume(checkpoint)

    def _checked(self, batch: Examples) -> Examples:
        keep = np.ones(len(batch), dtype=bool)
        if self.ranges is not None:
            inside = ((batch.x >= self.ranges[0]) & (batch.x <= self.ranges[1])).all(axis=1)
            self.report.held_back[OUT_OF_RANGE] += int((~inside).sum())
            keep &= inside
        for source, rate in self.rates.items():
            part = keep & (batch.investigation == source)
            n = int(part.sum())
            trusted = n and rate.seen >= self.params.rate_warmup
            if trusted and abs(rate.deviation(int(batch.y[part].sum()), n)) > self.params.max_label_rate_sigma:
                self.report.held_back[LABEL_RATE] += n
                keep &= ~part
        return batch.take(keep)

    def _step(self, examples: Examples) -> None:
        """Adam steps over the examples, shuffled, in `batch_size` rows at a time, at the decayed rate."""
        rate = self.params.learning_rate / (1 + self.params.lr_decay * self.report.updates)
        for group in self._optimizer.param_groups:
            group["lr"] = rate
        x = torch.from_numpy(self.champion.standardizer.transform(examples.x))
        y = torch.from_numpy(examples.y.astype(np.float32))
        order = torch.from_numpy(self._rng.permutation(len(y)))
        self._network_module.train()
        for rows in order.split(self.params.batch_size):
            self._optimizer.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(self._network_module(x[rows]), y[rows])
            loss.backward()
            self._optimizer.step()
        self._network_module.eval()

    def _judge(self, now_us: int) -> None:
        """Shadow validation of the update against the published model and the champion (see the module's doc)."""
        window = self.window
        if int(window.y.sum()) < self.params.min_validation_frauds or window.y.all():
            self.report.rejected += 1
            return
        working = _detached(self._network_module.state_dict())
        figures = {
            "update": self._ap(working, window),
            "online": self._ap(self.checkpoint.state, window),
            "champion": self._ap(self._root.state, window),
        }
        parent = self.checkpoint.parent
        figures["parent"] = self._ap(parent.state, window) if parent is not None else None
        rounded = {name: None if value is None else round(value, 6) for name, value in figures.items()}
        validation = {"at_us": now_us, "rows": len(window), "frauds": int(window.y.sum()), **rounded}
        self.report.last_validation = validation
        tolerance, margin = self.params.publish_tolerance, self.params.rollback_margin
        if parent is not None and figures["online"] < figures["parent"] - margin:
            self.report.rolled_back += 1
            self.checkpoint = parent
            self._resume(parent)
            self._notify(ROLLED_BACK, now_us, validation)
        elif figures["update"] >= max(figures["online"], figures["champion"]) - tolerance:
            self._publish(now_us, validation)
        elif figures["update"] < figures["online"] - margin:
            self.report.rolled_back += 1
            self._resume(self.checkpoint)
        else:
            self.report.rejected += 1

    def _publish(self, now_us: int, validation: dict[str, Any] | None) -> None:
        state = _detached(self._network_module.state_dict())
        self.checkpoint = Checkpoint(self.checkpoint.number + 1, state, self.checkpoint, validation)
        self.report.published += 1
        self._notify(PUBLISHED, now_us, validation)

    def _notify(self, action: str, now_us: int, validation: dict[str, Any] | None) -> None:
        if self.on_publish is not None:
            self.on_publish({"action": action, "checkpoint": self.checkpoint, "at_us": now_us,
                             "validation": validation, "report": self.report.as_json()})  # fmt: skip

    def _resume(self, checkpoint: Checkpoint) -> None:
        """Learning goes on from `checkpoint`'s weights, with a fresh optimizer."""
        network = copy.deepcopy(self.champion.network)
        network.load_state_dict(checkpoint.state)
        network.eval()
        self._network_module = network
        self._optimizer = torch.optim.Adam(network.parameters(), lr=self.params.learning_rate)

    def reset(self, champion: FraudScorer, ranges: np.ndarray | None) -> None:
        """A new champion (the retrain): learning starts again from it; the reservoir and the window stay."""
        self.champion = champion
        self.ranges = _widened(ranges, self.params.range_margin) if ranges is not None else None
        self._root = Checkpoint(0, _detached(champion.network.state_dict()), None, None)
        self.checkpoint = self._root
        self._resume(self._root)

    # -- helpers
    @property
    def _window_us(self) -> int:
        return self.params.validation_days * MICROS_PER_DAY

    def _count_rates(self, train: Examples) -> None:
        for source in (False, True):
            part = train.investigation == source
            self.rates[source].add(int(train.y[part].sum()), int(part.sum()))

    def _ap(self, state: dict[str, torch.Tensor], window: Examples) -> float:
        return average_precision(window.y, self._blend(self._network(state, window.x), window.trees))

    def _network(self, state: dict[str, torch.Tensor], x: np.ndarray) -> np.ndarray:
        c = self.champion
        return FraudScorer(c.standardizer, c.spec, state).predict_proba(x)

    def _blend(self, network: np.ndarray, trees: np.ndarray) -> np.ndarray:
        w = self.champion.trees_weight
        return network if self.champion.trees is None else (1 - w) * network + w * trees


def trees_proba(champion: FraudScorer, x: np.ndarray) -> np.ndarray:
    """The champion trees' probabilities of the rows (zeros without trees): computed once per example."""
    if champion.trees is None:
        return np.zeros(len(x))
    return champion.trees.predict_proba(np.asarray(x, dtype=np.float64))


def schema_ranges(schema: list[dict[str, Any]], features: tuple[str, ...]) -> np.ndarray:
    """(2, n_features): each feature's training min and max from a version's `feature_schema` tag."""
    by_name = {entry["name"]: entry for entry in schema}
    missing = [name for name in features if name not in by_name]
    if missing:
        raise ValueError(f"feature_schema lacks {missing}; expected an entry for each of {features}")
    return np.array([[float(by_name[name][bound]) for name in features] for bound in ("min", "max")])


def _widened(ranges: np.ndarray, margin: float) -> np.ndarray:
    span = ranges[1] - ranges[0]
    return np.stack([ranges[0] - margin * span, ranges[1] + margin * span])


def _detached(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in state.items()}
