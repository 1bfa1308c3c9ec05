"""What no model can reach on the simulated data (issue 21): the backtest's figures of an oracle that knows every
fraud a known label can reveal and nothing else.

The simulator's scenario 2 (a compromised terminal: its transactions are frauds for a while, their amounts are
ordinary) leaves one trace only, the terminal's known frauds; a scenario-2 fraud at a terminal with no known fraud in
its longest window (`terminal_risk_30d` = 0: no fraud labelled by the transaction's time) looks exactly like a
genuine transaction. The oracle scores every other fraud 1 and these frauds and every genuine transaction by one
random draw: the best ranking that the information at hand allows. Scenario 1 (amounts over the threshold) and 3
(amounts far above the card's habits) stay visible to it.

Run after `make repro`: uv run python -m bench.quality_ceiling
Writes reports/quality/ceiling.csv (per fold, and the mean).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl

from bench.quality_search import backtest_folds
from fraud_detection.evaluation.metrics import auc_roc, average_precision, card_precision_at_k
from fraud_detection.evaluation.protocol import fold_test_set
from fraud_detection.runtime.project import project_params

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "reports" / "quality" / "ceiling.csv"
DATA = Path(os.environ.get("FRAUD_DETECTION_DATA", ROOT / "data"))
TERMINAL_SCENARIO = 2


def main() -> None:
    params = project_params(root=ROOT)
    delay, top_k = params.features.label_delay_days, params.evaluate.top_k
    scenarios = pl.read_parquet(DATA / "01_raw/simulated_transactions.parquet",
                                columns=["transaction_id", "tx_fraud_scenario"])  # fmt: skip
    columns = ["transaction_id", "tx_datetime", "customer_id", "tx_fraud", "terminal_risk_30d"]
    frame = pl.read_parquet(DATA / "05_model_input/training_set.parquet", columns=columns)
    frame = frame.join(scenarios, on="transaction_id", how="left")
    rng = np.random.default_rng(0)
    rows = []
    for number, fold in enumerate(backtest_folds(params)):
        test = fold_test_set(frame, fold, delay)
        hidden = (pl.col("tx_fraud_scenario") == TERMINAL_SCENARIO) & (pl.col("terminal_risk_30d") == 0)
        visible = (pl.col("tx_fraud") == 1) & ~hidden
        oracle = test.with_columns(score=pl.when(visible).then(1.0).otherwise(pl.Series(rng.random(test.height))))
        labels, scores = oracle["tx_fraud"].to_numpy(), oracle["score"].to_numpy()
        frauds = int(labels.sum())
        rows.append({
            "fold": str(number), "test_start": str(fold.test_start), "test_frauds": frauds,
            "hidden_frauds": int(test.select((hidden & (pl.col("tx_fraud") == 1)).sum()).item()),
            "auc_roc": auc_roc(labels, scores), "average_precision": average_precision(labels, scores),
            "card_precision_at_100": card_precision_at_k(oracle, top_k),
        })  # fmt: skip
    table = pl.DataFrame(rows).with_columns(hidden_share=pl.col("hidden_frauds") / pl.col("test_frauds"))
    mean = table.select(pl.lit("mean").alias("fold"), pl.lit("").alias("test_start"),
                        pl.exclude("fold", "test_start").mean())  # fmt: skip
    table = pl.concat([table, mean], how="vertical_relaxed").with_columns(pl.selectors.float().round(4))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    table.write_csv(OUT)
    with pl.Config(tbl_cols=20, tbl_width_chars=200):
        print(table)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
