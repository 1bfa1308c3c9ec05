"""What no model can reach on the simulated data (issue 21): the backtest's figures of oracles that know more than
any model can.

Two oracles, each scored on the backtest's 4 test weeks (each figure the mean over `DRAWS` random orders of what
the oracle cannot tell apart):
- `visible`: scores 1 every fraud that a known label or the amount can reveal, and everything else at random.
  Scenario 2 (a compromised terminal: its transactions are frauds for 28 days, their amounts are ordinary) leaves one
  trace only, the frauds of that compromise once labelled. A scenario-2 fraud is hidden until the first fraud of its
  terminal's compromise is labelled (`features.label_delay_days` after it): before, it looks exactly like a genuine
  transaction, whatever the terminal's older frauds (those of an earlier compromise, or a card's fraud there, tell
  nothing about this one: the simulator draws compromised terminals uniformly each day). Every other fraud counts
  as visible, scenario 3's included: generous, since a third of a compromised card's transactions multiplied by 5
  often falls inside the card's own genuine range. A model that ranks the hidden frauds no better than chance has
  an expected AUC ROC of at most 1 - (hidden share) / 2.
- `bayes`: the posterior probability of fraud given the simulator's own truth, replayed from its seed: the card's
  true amount distribution (N(m, m/2), negatives redrawn from U(0, 2m)), whether the card is compromised that day
  (scenario 3), and whether the terminal is compromised wherever its compromise is revealed (as above).
  A compromised card's transaction of amount a is fraud with odds (1/3 * f(a/5)/5) : (2/3 * f(a)), f the card's
  genuine amount density; an amount over the threshold is fraud (scenario 1); a transaction at a terminal whose
  compromise (if any) is not revealed may be a hidden scenario-2 fraud, at the rate such transactions have in the
  test week. Knowing the true profile and the compromise windows is more than any model knows, so ranking by this
  posterior (the likelihood-ratio order, the best ROC and precision-recall curves for that information) bounds
  every model's expected AUC ROC and AP from above. Expected: a fold's hidden frauds are a hundred or so, and a
  model's ranking of them can beat chance in one fold by luck (0.01 AUC and more), not on average.

Run after `make repro` on data simulated without drift: uv run python -m bench.quality_ceiling
Writes reports/quality/ceiling.csv (per oracle and fold, and each oracle's mean).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
from scipy.stats import norm

from bench.quality_search import backtest_folds
from fraud_detection.evaluation.metrics import auc_roc, average_precision, card_precision_at_k
from fraud_detection.evaluation.protocol import fold_test_set
from fraud_detection.runtime.params import Params
from fraud_detection.runtime.project import project_params
from fraud_detection.simulation import simulator

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "reports" / "quality" / "ceiling.csv"
DATA = Path(os.environ.get("FRAUD_DETECTION_DATA", ROOT / "data"))
TERMINAL_SCENARIO = 2
TIE_BREAK = 1e-9  # equal posteriors are ordered by a random draw
DRAWS = 100  # an oracle's figures are their mean over this many draws (one draw moves a fold's AUC by about 0.005)


def simulator_truth(params: Params) -> pl.DataFrame:
    """Per transaction: the card's true mean amount, whether the card and the terminal are compromised that day, and
    whether the terminal's compromise is revealed: one of its frauds since the compromise began (in scenario 2 every
    transaction there is one) was labelled by the transaction's time (`features.label_delay_days` after it)."""
    config = simulator.SimulationConfig.from_params(params.simulate)
    if config.drift:
        raise SystemExit("simulate.drift is set: the bayes oracle replays the handbook's process without drift")
    replayed = simulator.simulate_transactions(config)
    schedule = simulator.compromise_schedule(config)
    customers = simulator._customer_profiles(np.random.default_rng(config.seed), config.n_customers)  # first draws
    rules, days = config.fraud, config.n_days
    terminal_bad = np.zeros((config.n_terminals, days + rules.terminal_compromise_days), dtype=bool)
    card_bad = np.zeros((config.n_customers, days + rules.customer_compromise_days), dtype=bool)
    for day in range(days):
        terminal_bad[schedule.terminals[day], day : day + rules.terminal_compromise_days] = True
        card_bad[schedule.customers[day], day : day + rules.customer_compromise_days] = True
    customer, terminal = replayed["customer_id"].to_numpy(), replayed["terminal_id"].to_numpy()
    tx_day = (replayed["tx_datetime"].dt.date() - config.start_date).dt.total_days().to_numpy()
    delay_us, tx_us = params.features.label_delay_days * 86_400_000_000, replayed["tx_datetime"].dt.epoch("us")
    return replayed.select("transaction_id", replayed_scenario="tx_fraud_scenario").with_columns(
        mean_amount=customers["mean_amount"][customer],
        card_compromised=card_bad[customer, tx_day],
        terminal_compromised=terminal_bad[terminal, tx_day],
        terminal_revealed=compromise_revealed(terminal_bad, terminal, tx_day, tx_us.to_numpy(), delay_us),
    )


def compromise_revealed(compromised: np.ndarray, terminal: np.ndarray, day: np.ndarray, tx_us: np.ndarray,
                        delay_us: int) -> np.ndarray:  # fmt: skip
    """Per transaction (its terminal, day, time), whether its terminal is compromised (`compromised`: terminal x day)
    and the first transaction since that compromise began (a fraud) was labelled by then (`delay_us` after it). A
    compromise drawn again while under way extends it: it began on the first day of the unbroken run."""
    began = compromised & ~np.pad(compromised, ((0, 0), (1, 0)))[:, :-1]
    began_on = np.maximum.accumulate(np.where(began, np.arange(compromised.shape[1]), -1), axis=1)
    bad = compromised[terminal, day]
    frame = pl.DataFrame({"terminal": terminal, "began": np.where(bad, began_on[terminal, day], -1), "tx_us": tx_us})
    first_us = frame.select(pl.col("tx_us").min().over("terminal", "began")).to_series().to_numpy()
    return bad & (first_us + delay_us <= tx_us)


def genuine_density(amount: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """The simulator's genuine amount density: N(mean, mean / 2), its negative draws redrawn from U(0, 2 mean)."""
    redrawn = np.where((amount > 0) & (amount < 2 * mean), norm.cdf(-2.0) / (2 * mean), 0.0)
    return norm.pdf(amount, loc=mean, scale=mean / 2) + redrawn


def bayes_scores(test: pl.DataFrame, params: Params) -> np.ndarray:
    rules = params.simulate.fraud
    amount, mean = test["tx_amount"].to_numpy(), test["mean_amount"].to_numpy()
    share, times = rules.customer_fraud_fraction, rules.customer_amount_multiplier
    fraud_like = share * genuine_density(amount / times, mean) / times
    genuine_like = (1 - share) * genuine_density(amount, mean)
    card = np.where(test["card_compromised"].to_numpy(), fraud_like / np.maximum(fraud_like + genuine_like, 1e-300), 0)
    known_bad = test["terminal_revealed"].to_numpy()
    hidden = test.select(pl.col("terminal_compromised") & ~pl.col("terminal_revealed")).to_series().to_numpy()
    terminal = np.where(known_bad, 0.0, hidden.sum() / max((~known_bad).sum(), 1))
    posterior = 1 - (1 - terminal) * (1 - card)
    return np.where((amount > rules.amount_threshold) | known_bad, 1.0, posterior)


def main() -> None:
    params = project_params(root=ROOT)
    delay, top_k = params.features.label_delay_days, params.evaluate.top_k
    raw = pl.read_parquet(DATA / "01_raw/simulated_transactions.parquet",
                          columns=["transaction_id", "tx_fraud_scenario"])  # fmt: skip
    truth = simulator_truth(params)
    replayed = raw.join(truth, on="transaction_id").filter(pl.col("tx_fraud_scenario") != pl.col("replayed_scenario"))
    if raw.height != truth.height or replayed.height:
        raise SystemExit("the replayed simulation differs from data/01_raw: run `make repro` first")
    columns = ["transaction_id", "tx_datetime", "customer_id", "tx_amount", "tx_fraud"]
    frame = pl.read_parquet(DATA / "05_model_input/training_set.parquet", columns=columns)
    frame = frame.join(raw, on="transaction_id", how="left").join(truth, on="transaction_id", how="left")
    rng = np.random.default_rng(0)
    rows = []
    for number, fold in enumerate(backtest_folds(params)):
        test = fold_test_set(frame, fold, delay)
        hidden = (pl.col("tx_fraud_scenario") == TERMINAL_SCENARIO) & ~pl.col("terminal_revealed")
        visible = test.select((pl.col("tx_fraud") == 1) & ~hidden).to_series().to_numpy()
        posterior, labels = bayes_scores(test, params), test["tx_fraud"].to_numpy()
        figures: dict[str, list[tuple[float, float, float]]] = {"visible": [], "bayes": []}
        for draw in rng.random((DRAWS, test.height)):
            oracles = {"visible": np.where(visible, 1.0, draw), "bayes": posterior + TIE_BREAK * draw}
            for oracle, scores in oracles.items():
                cp = card_precision_at_k(test.with_columns(score=pl.Series(scores)), top_k)
                figures[oracle].append((auc_roc(labels, scores), average_precision(labels, scores), cp))
        for oracle, drawn in figures.items():
            auc, ap, cp = np.mean(drawn, axis=0).tolist()
            rows.append({
                "oracle": oracle, "fold": str(number), "test_start": str(fold.test_start),
                "test_frauds": int(labels.sum()),
                "hidden_frauds": int(test.select((hidden & (pl.col("tx_fraud") == 1)).sum()).item()),
                "auc_roc": auc, "average_precision": ap, "card_precision_at_100": cp,
            })  # fmt: skip
    table = pl.DataFrame(rows).with_columns(hidden_share=pl.col("hidden_frauds") / pl.col("test_frauds"))
    means = table.group_by("oracle", maintain_order=True).agg(
        pl.lit("mean").alias("fold"), pl.lit("").alias("test_start"), pl.exclude("oracle", "fold", "test_start").mean()
    )
    table = pl.concat([table, means], how="vertical_relaxed").with_columns(pl.selectors.float().round(4))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    table.write_csv(OUT)
    with pl.Config(tbl_cols=20, tbl_width_chars=200, tbl_rows=20):
        print(table)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
