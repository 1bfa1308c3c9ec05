"""The model's pieces: preprocessing fitted on training data, the network and its training system."""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from fraud_detection.models.data import TransactionDataModule
from fraud_detection.models.network import FeedForward
from fraud_detection.models.preprocessing import Standardizer
from fraud_detection.models.system import FraudClassifier

FEATURES = ("tx_amount", "customer_nb_tx_7d", "terminal_risk_7d")


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    """Frauds have large amounts and risky terminals: learnable."""
    rng = np.random.default_rng(0)
    labels = (rng.random(2000) < 0.1).astype(np.float32)
    matrix = np.column_stack(
        [rng.lognormal(3, 1, 2000) * (1 + 4 * labels), rng.poisson(10, 2000), rng.random(2000) * 0.2 + 0.5 * labels]
    )
    return matrix, labels


def test_standardizer_is_fitted_on_training_data_and_round_trips(data) -> None:
    matrix, _ = data
    scaler = Standardizer.fit(matrix, FEATURES, log_features=("tx_amount",))
    out = scaler.transform(matrix)
    assert out.dtype == np.float32 and np.allclose(out.mean(axis=0), 0, atol=1e-5)
    assert np.allclose(out.std(axis=0), 1, atol=1e-4)
    assert Standardizer.from_dict(scaler.to_dict()) == scaler
    constant = Standardizer.fit(np.ones((5, 3)), FEATURES, ())
    assert np.isfinite(constant.transform(np.ones((2, 3)))).all(), "a constant feature is not divided by 0"


def test_standardizer_names_a_feature_with_nan(data) -> None:
    matrix, _ = data
    matrix[7, 2] = np.nan
    with pytest.raises(ValueError, match="feature terminal_risk_7d has NaN or infinite values"):
        Standardizer.fit(matrix, FEATURES, ())


def test_the_data_module_refuses_fewer_rows_than_a_batch(data) -> None:
    matrix, labels = data
    with pytest.raises(ValueError, match="fewer than one batch"):
        TransactionDataModule((matrix[:10], labels[:10]), (matrix, labels), batch_size=64, seed=0)


def _train(data, seed: int, epochs: int) -> tuple[FraudClassifier, dict]:
    matrix, labels = data
    scaler = Standardizer.fit(matrix, FEATURES, ("tx_amount",))
    x = scaler.transform(matrix)
    pl.seed_everything(seed, workers=True)
    network = FeedForward(len(FEATURES), (16, 8), dropout=0.0)
    system = FraudClassifier(network, learning_rate=1e-2, weight_decay=0.0, pos_weight=5.0, optimizer="adam")
    trainer = pl.Trainer(
        max_epochs=epochs, accelerator="cpu", deterministic=True, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(system, TransactionDataModule((x[:1500], labels[:1500]), (x[1500:], labels[1500:]), 128, seed))
    return system, {k: float(v) for k, v in trainer.callback_metrics.items()}


def test_training_learns_a_learnable_signal(data) -> None:
    _, metrics = _train(data, seed=1, epochs=5)
    assert metrics["val_average_precision"] > 0.9 and metrics["val_auc_roc"] > 0.95


def test_training_is_reproducible_on_cpu(data) -> None:
    first, metrics = _train(data, seed=3, epochs=2)
    second, again = _train(data, seed=3, epochs=2)
    assert metrics == again
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_the_network_can_overfit_one_batch() -> None:
    """The cheapest proof that the training system is wired right."""
    torch.manual_seed(0)
    x, y = torch.randn(32, 5), (torch.rand(32) < 0.5).float()
    system = FraudClassifier(
        FeedForward(5, (32, 32), dropout=0.0), 1e-2, weight_decay=0.0, pos_weight=1.0, optimizer="adam"
    )
    optimiser = system.configure_optimizers()
    for _ in range(300):
        optimiser.zero_grad()
        loss = system.loss(system.network(x), y)
        loss.backward()
        optimiser.step()
    assert loss.item() < 0.02
    assert ((system(x) > 0.5).float() == y).all()


def test_numpy_inference_scores_as_the_torch_network(data) -> None:
    """The scorer runs the trained layers in numpy; the torch network is the reference (float32 rounding only)."""
    from fraud_detection.models.scorer import FraudScorer, NetworkSpec

    matrix, _ = data
    torch.manual_seed(0)
    spec = NetworkSpec(len(FEATURES), (16, 8), 0.3)
    scorer = FraudScorer(Standardizer.fit(matrix, FEATURES, ("tx_amount",)), spec, spec.build().state_dict())
    numpy_scores, torch_scores = scorer.predict_proba(matrix), scorer.predict_proba_torch(matrix)
    assert numpy_scores.dtype == np.float64 and numpy_scores.shape == (len(matrix),)
    assert np.abs(numpy_scores - torch_scores).max() < 1e-6
    assert scorer.predict_proba(matrix[:1])[0] == pytest.approx(torch_scores[0], abs=1e-6), "one row as a batch"


def test_a_layer_without_numpy_inference_is_refused() -> None:
    from fraud_detection.models.scorer import numpy_layers

    with pytest.raises(TypeError, match="layer Tanh has no numpy inference"):
        numpy_layers(torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh()))


def _boosting(params, **changes):
    return params.train.boosting.model_copy(update={"max_rounds": 60, "patience": 10, **changes})


def test_trees_learn_and_keep_only_the_best_rounds(data, params) -> None:
    from fraud_detection.evaluation.metrics import average_precision
    from fraud_detection.models.boosting import fit_trees

    matrix, labels = data
    trees = fit_trees((matrix[:1500], labels[:1500]), (matrix[1500:], labels[1500:]), FEATURES,
                      _boosting(params), seed=0)  # fmt: skip
    assert 1 <= trees.rounds <= 60
    scores = trees.predict_proba(matrix[1500:])
    assert scores.dtype == np.float64 and ((scores >= 0) & (scores <= 1)).all()
    assert average_precision(labels[1500:], scores) > 0.9
    again = fit_trees((matrix[:1500], labels[:1500]), (matrix[1500:], labels[1500:]), FEATURES,
                      _boosting(params), seed=0)  # fmt: skip
    assert np.array_equal(again.predict_proba(matrix), trees.predict_proba(matrix)), "deterministic"


def test_the_scorer_averages_network_and_trees_and_round_trips(data, params, tmp_path) -> None:
    from fraud_detection.models.boosting import fit_trees
    from fraud_detection.models.scorer import FraudScorer, NetworkSpec

    matrix, labels = data
    torch.manual_seed(0)
    spec = NetworkSpec(len(FEATURES), (16, 8), 0.0)
    standardizer = Standardizer.fit(matrix, FEATURES, ("tx_amount",))
    trees = fit_trees((matrix, labels), (matrix, labels), FEATURES, _boosting(params), seed=0)
    network_only = FraudScorer(standardizer, spec, spec.build().state_dict())
    blended = FraudScorer(standardizer, spec, network_only.network.state_dict(), trees, 0.25)
    expected = 0.75 * network_only.predict_proba(matrix) + 0.25 * trees.predict_proba(matrix)
    assert np.allclose(blended.predict_proba(matrix), expected, rtol=0, atol=1e-12)
    assert np.abs(blended.predict_proba_torch(matrix) - expected).max() < 1e-6
    assert blended.predict_proba(matrix[3:4])[0] == pytest.approx(expected[3], abs=1e-12), "one row on one thread"
    blended.save(tmp_path / "scorer")
    loaded = FraudScorer.load(tmp_path / "scorer")
    assert loaded.trees_weight == 0.25 and np.array_equal(loaded.predict_proba(matrix), blended.predict_proba(matrix))
    network_only.save(tmp_path / "network")
    assert FraudScorer.load(tmp_path / "network").trees is None


@pytest.mark.parametrize("weight, with_trees", [(0.5, False), (0.0, True), (1.5, True)])
def test_the_scorer_refuses_a_weight_that_does_not_match_its_trees(data, params, weight, with_trees) -> None:
    from fraud_detection.models.boosting import fit_trees
    from fraud_detection.models.scorer import FraudScorer, NetworkSpec

    matrix, labels = data
    spec = NetworkSpec(len(FEATURES), (4,), 0.0)
    trees = fit_trees((matrix, labels), (matrix, labels), FEATURES, _boosting(params, max_rounds=3), 0)
    with pytest.raises(ValueError, match=f"trees_weight is {weight}; expected 0 without trees"):
        FraudScorer(Standardizer.fit(matrix, FEATURES, ()), spec, spec.build().state_dict(),
                    trees if with_trees else None, weight)  # fmt: skip


def test_a_saved_scorer_scores_without_torch_and_builds_its_network_on_demand(data, params, tmp_path) -> None:
    """What a Bento runs: the saved folder read by numpy alone (torch cannot be imported in that process), the
    same scores as the torch reference; the torch network comes back from weights.pt when asked for."""
    import subprocess
    import sys

    from fraud_detection.models.boosting import fit_trees
    from fraud_detection.models.scorer import LAYERS_FILE, WEIGHTS_FILE, FraudScorer, NetworkSpec

    matrix, labels = data
    torch.manual_seed(0)
    spec = NetworkSpec(len(FEATURES), (16, 8), 0.0, increasing=(0,))
    trees = fit_trees((matrix, labels), (matrix, labels), FEATURES, _boosting(params, max_rounds=5), seed=0)
    scorer = FraudScorer(Standardizer.fit(matrix, FEATURES, ("tx_amount",)), spec, spec.build().state_dict(), trees,
                         0.5)  # fmt: skip
    scorer.save(tmp_path / "scorer")
    assert (tmp_path / "scorer" / LAYERS_FILE).is_file() and (tmp_path / "scorer" / WEIGHTS_FILE).is_file()
    np.save(tmp_path / "matrix.npy", matrix)
    script = f"""
import builtins, sys
import numpy as np
real = builtins.__import__
def no_torch(name, *args, **kwargs):
    if name.split(".")[0] in ("torch", "pytorch_lightning", "lightning"):
        raise ImportError("no torch here: " + name)
    return real(name, *args, **kwargs)
builtins.__import__ = no_torch
from pathlib import Path
from fraud_detection.models.scorer import FraudScorer
scores = FraudScorer.load(Path({str(tmp_path / "scorer")!r})).predict_proba(np.load({str(tmp_path / "matrix.npy")!r}))
np.save({str(tmp_path / "scores.npy")!r}, scores)
print(sorted(name for name in sys.modules if name.split(".")[0] == "torch"))
"""
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "[]", "torch was imported"
    expected = scorer.predict_proba_torch(matrix)
    assert np.abs(np.load(tmp_path / "scores.npy") - expected).max() < 1e-6
    loaded = FraudScorer.load(tmp_path / "scorer")
    network = loaded.network  # built from weights.pt on first use
    original = scorer.network.state_dict()
    assert network.state_dict().keys() == original.keys()
    assert all(torch.equal(value, original[name]) for name, value in network.state_dict().items())
    assert np.abs(loaded.predict_proba_torch(matrix) - expected).max() < 1e-12
