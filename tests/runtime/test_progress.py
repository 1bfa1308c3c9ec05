"""Progress bars draw only on a terminal with CI unset: the decision, a real `fit` either side of it, the loops'
bars, and the contract of the one Feast internal the project switches (the name its materialization builds bars
from)."""

from __future__ import annotations

import inspect
import io
import sys

import numpy as np
import pytest
import tqdm

from fraud_detection.models.params import TrainParams
from fraud_detection.models.training import fit
from fraud_detection.runtime.progress import feast_progress, lightning_progress_bar, progress, show_progress
from tests.conftest import changed

FEATURES = ("tx_amount", "customer_nb_tx_7d", "terminal_risk_7d")


class Terminal(io.StringIO):
    """A stream that says it is a terminal (what a user's shell gives), keeping what is written."""

    def isatty(self) -> bool:
        return super().isatty() or True  # a closed one raises, as a real stream does


def on_terminal(monkeypatch: pytest.MonkeyPatch) -> Terminal:
    """stdout and stderr are one terminal, CI is unset. Called in the test's body: pytest sets its own capture
    streams again after the fixtures ran."""
    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    monkeypatch.setattr(sys, "stderr", screen)
    monkeypatch.delenv("CI", raising=False)
    return screen


@pytest.mark.parametrize(
    ("stream", "ci", "expected"),
    [
        (Terminal(), None, True),
        (Terminal(), "", True),
        (Terminal(), "false", True),
        (Terminal(), "0", True),
        (Terminal(), "1", False),
        (Terminal(), "true", False),
        (Terminal(), "True", False),
        (io.StringIO(), None, False),  # a file, a pipe, DVC's log
    ],
)
def test_progress_only_on_a_terminal_outside_ci(stream: io.StringIO, ci: str | None, expected: bool) -> None:
    environ = {} if ci is None else {"CI": ci}
    assert show_progress(stream, environ) is expected


def test_a_closed_stream_or_a_file_is_not_a_terminal() -> None:
    closed = Terminal()
    closed.close()
    assert not show_progress(closed, {})
    assert not show_progress(io.TextIOWrapper(io.BytesIO()), {})


def test_the_default_stream_is_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    on_terminal(monkeypatch)
    assert show_progress()
    monkeypatch.setenv("CI", "1")
    assert not show_progress()


def test_the_loop_bar_draws_on_a_terminal_and_yields_every_item(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = on_terminal(monkeypatch)
    assert list(progress(range(3), "backtest", unit="fold")) == [0, 1, 2]
    assert "backtest" in terminal.getvalue() and "3/3" in terminal.getvalue()


def test_the_loop_bar_is_silent_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = on_terminal(monkeypatch)
    monkeypatch.setenv("CI", "true")
    assert list(progress(range(3), "backtest", unit="fold")) == [0, 1, 2]
    assert terminal.getvalue() == ""


def test_lightning_bar_sits_below_an_open_loop_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    on_terminal(monkeypatch)
    (alone,) = lightning_progress_bar()
    for _ in progress(range(1), "backtest", unit="fold"):
        (nested,) = lightning_progress_bar()
    assert (alone.process_position, nested.process_position) == (0, 1)


def test_lightning_bar_needs_stdout_to_be_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    on_terminal(monkeypatch)
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # `fraud-detection ... --json | jq`: Lightning draws on stdout
    assert lightning_progress_bar() == []


def fit_tiny(train_params: TrainParams) -> None:
    """`fit` on 300 rows for 2 epochs (validation: 100 rows), a learnable signal."""
    rng = np.random.default_rng(0)
    labels = (rng.random(400) < 0.2).astype(np.float32)
    matrix = np.column_stack([rng.lognormal(3, 1, 400) * (1 + 4 * labels), rng.poisson(10, 400), rng.random(400)])
    config = changed(train_params, max_epochs=2, hidden_sizes=[4], batch_size=64, increasing=[],
                     boosting={"weight": 0.0})  # fmt: skip
    fit((matrix[:300], labels[:300]), (matrix[300:], labels[300:]), FEATURES, (), config)


def test_fit_draws_no_bar_when_stderr_is_not_a_terminal(small_train_params, capfd, monkeypatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    fit_tiny(small_train_params)
    out, err = capfd.readouterr()
    assert "Epoch" not in out + err and "it/s" not in out + err


def test_fit_draws_no_bar_in_ci(small_train_params, capfd, monkeypatch) -> None:
    terminal = on_terminal(monkeypatch)
    monkeypatch.setenv("CI", "1")
    fit_tiny(small_train_params)
    out, err = capfd.readouterr()
    assert "Epoch" not in terminal.getvalue() + out + err


def test_fit_draws_lightning_bar_on_a_terminal(small_train_params, monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = on_terminal(monkeypatch)
    fit_tiny(small_train_params)
    assert "Epoch 1" in terminal.getvalue()


def test_feast_builds_its_materialization_bar_from_the_name_switched() -> None:
    """Contract (feast 0.67): `FeatureStore.materialize` calls `tqdm(...)` of its module, which is tqdm's class."""
    import feast.feature_store as feast_module

    assert feast_module.tqdm is tqdm.tqdm
    assert "tqdm(total=" in inspect.getsource(feast_module.FeatureStore.materialize)


def test_feast_bars_draw_only_when_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = on_terminal(monkeypatch)
    import feast.feature_store as feast_module

    def draw() -> None:
        bar = feast_module.tqdm(total=5, ncols=100)
        bar.update(5)
        bar.close()

    with feast_progress(enabled=False):
        draw()
    assert terminal.getvalue() == ""
    with feast_progress(enabled=True):
        draw()
    assert "5/5" in terminal.getvalue()
    assert feast_module.tqdm is tqdm.tqdm, "the name is restored after the block"
