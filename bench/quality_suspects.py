"""Where our features lose to the handbook's: the handbook-reference logistic regression against ours, on the same
folds of the backtest, with each difference between the two feature sets switched one at a time (issue 21).

Our 15 versions of the handbook's 15 features start from the training set (day-tile windows, the current transaction
left out of the customer windows, night before 06:00); each variant swaps in one of the handbook's definitions
(evaluation/handbook.py): the current transaction inside the customer windows, exact rolling customer windows,
exact rolling terminal windows, night as hour <= 6. Then the preprocessing: log1p before scaling, or scaling alone.
Every row is the mean ± std over the backtest's folds (params.yaml `evaluate`), trained with the same seed.

Run after `make repro`: uv run python -m bench.quality_suspects [--models lr,rf]
Writes reports/quality/suspects.csv.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from fraud_detection.evaluation import handbook
from fraud_detection.evaluation.metrics import auc_roc, average_precision, card_precision_at_k
from fraud_detection.evaluation.protocol import fold_test_set, fold_train_set
from fraud_detection.pipelines.evaluate.nodes import _folds
from fraud_detection.runtime.project import project_params

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "reports" / "quality" / "suspects.csv"
DATA = Path(os.environ.get("FRAUD_DETECTION_DATA", ROOT / "data"))
W = handbook.WINDOWS_DAYS


def our_fifteen(frame: pl.DataFrame) -> dict[str, pl.Expr]:
    """Our versions of the handbook's 15 features, named as the handbook's."""
    columns = {"TX_AMOUNT": pl.col("tx_amount"), "TX_DURING_WEEKEND": pl.col("tx_during_weekend"),
               "TX_DURING_NIGHT": pl.col("tx_during_night")}  # fmt: skip
    for n in W:
        columns[f"CUSTOMER_ID_NB_TX_{n}DAY_WINDOW"] = pl.col(f"customer_nb_tx_{n}d")
        columns[f"CUSTOMER_ID_AVG_AMOUNT_{n}DAY_WINDOW"] = pl.col(f"customer_avg_amount_{n}d")
        columns[f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW"] = pl.col(f"terminal_nb_tx_{n}d")
        columns[f"TERMINAL_ID_RISK_{n}DAY_WINDOW"] = pl.col(f"terminal_risk_{n}d")
    return columns


def with_current(n: int) -> dict[str, pl.Expr]:
    """Our customer windows with the transaction itself counted."""
    count = pl.col(f"customer_nb_tx_{n}d")
    total = pl.col(f"customer_avg_amount_{n}d") * count + pl.col("tx_amount")
    return {f"CUSTOMER_ID_NB_TX_{n}DAY_WINDOW": count + 1, f"CUSTOMER_ID_AVG_AMOUNT_{n}DAY_WINDOW": total / (count + 1)}


def exact_customer_without_current(n: int) -> dict[str, pl.Expr]:
    count = pl.col(f"hb_CUSTOMER_ID_NB_TX_{n}DAY_WINDOW") - 1
    total = pl.col(f"hb_CUSTOMER_ID_AVG_AMOUNT_{n}DAY_WINDOW") * (count + 1) - pl.col("tx_amount")
    return {f"CUSTOMER_ID_NB_TX_{n}DAY_WINDOW": count,
            f"CUSTOMER_ID_AVG_AMOUNT_{n}DAY_WINDOW": pl.when(count > 0).then(total / count).otherwise(0.0)}  # fmt: skip


def handbook_columns(names: list[str]) -> dict[str, pl.Expr]:
    return {name: pl.col(f"hb_{name}") for name in names}


def variants() -> dict[str, dict[str, pl.Expr]]:
    customer = [f"CUSTOMER_ID_{k}_{n}DAY_WINDOW" for n in W for k in ("NB_TX", "AVG_AMOUNT")]
    terminal = [f"TERMINAL_ID_{k}_{n}DAY_WINDOW" for n in W for k in ("NB_TX", "RISK")]
    current = {k: v for n in W for k, v in with_current(n).items()}
    exact_customer = {k: v for n in W for k, v in exact_customer_without_current(n).items()}
    return {
        "ours": {},
        "+ current transaction in customer windows": current,
        "+ exact rolling customer windows": exact_customer,
        "+ exact customer windows with the current transaction": handbook_columns(customer),
        "+ exact rolling terminal windows": handbook_columns(terminal),
        "+ night = hour <= 6": handbook_columns(["TX_DURING_NIGHT"]),
        "handbook reference (all of the above)": handbook_columns(list(handbook.HANDBOOK_FEATURES)),
    }


def scorer(model: str, log_scale: bool) -> Callable[[np.ndarray, np.ndarray, int], Callable]:
    def fit(matrix: np.ndarray, labels: np.ndarray, seed: int) -> Callable:
        prepare = _log_heavy if log_scale else (lambda m: m)
        fitted = (handbook.logistic_regression if model == "lr" else handbook.random_forest)(prepare(matrix),
                                                                                              labels, seed)  # fmt: skip
        return lambda rows: fitted(prepare(rows))

    return fit


def _log_heavy(matrix: np.ndarray) -> np.ndarray:
    """log1p of the amounts and counts (our preprocessing of heavy-tailed features), not of flags and rates."""
    out = matrix.copy()
    heavy = [i for i, name in enumerate(handbook.HANDBOOK_FEATURES) if "RISK" not in name and "DURING" not in name]
    out[:, heavy] = np.log1p(np.clip(out[:, heavy], 0, None))
    return out


def evaluate(frame: pl.DataFrame, columns: dict[str, pl.Expr], fit: Callable, params, delay: int) -> dict:
    base = our_fifteen(frame)
    table = frame.with_columns(**{name: columns.get(name, base[name]) for name in handbook.HANDBOOK_FEATURES})
    per_fold = []
    for fold in _folds(params.evaluate, delay):
        train, test = fold_train_set(table, fold), fold_test_set(table, fold, delay)
        x = train.select(handbook.HANDBOOK_FEATURES).to_numpy().astype(np.float64)
        scores = fit(x, train["tx_fraud"].to_numpy(), params.train.seed)(
            test.select(handbook.HANDBOOK_FEATURES).to_numpy().astype(np.float64)
        )
        labels = test["tx_fraud"].to_numpy()
        scored = test.select("tx_datetime", "customer_id", "tx_fraud").with_columns(score=pl.Series(scores))
        per_fold.append((auc_roc(labels, scores), average_precision(labels, scores),
                         card_precision_at_k(scored, params.evaluate.top_k)))  # fmt: skip
    figures = np.array(per_fold)
    return {
        f"{metric}_{kind}": float(getattr(np, kind)(figures[:, i], **({"ddof": 1} if kind == "std" else {})))
        for i, metric in enumerate(("auc_roc", "average_precision", "cp_at_100"))
        for kind in ("mean", "std")
    }


def main(models: list[str]) -> None:
    params = project_params(root=ROOT)
    delay = params.features.label_delay_days
    frame = pl.read_parquet(DATA / "05_model_input/training_set.parquet")
    hb = handbook.handbook_features(frame.select("transaction_id", "tx_datetime", "customer_id", "terminal_id",
                                                 "tx_amount", "tx_fraud"), delay)  # fmt: skip
    frame = frame.with_columns(hb.select(pl.col(handbook.HANDBOOK_FEATURES).name.prefix("hb_")))
    rows = []
    for model in models:
        for preprocessing, log_scale in (("scaling", False), ("log1p + scaling", True)):
            for name, columns in variants().items():
                figures = evaluate(frame, columns, scorer(model, log_scale), params, delay)
                rows.append({"model": model, "preprocessing": preprocessing, "features": name, **figures})
                print(rows[-1], flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(rows).with_columns(pl.selectors.float().round(4)).write_csv(OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lr", help="comma-separated: lr, rf")
    main(parser.parse_args().models.split(","))
