"""The candidate's recipe, chosen by measurement (issue 21): network sizes, gradient-boosted trees and the weight
that averages the two, each trial trained with 3 seeds on 4 folds.

The search never sees the backtest's test weeks: its folds follow the backtest's protocol (params.yaml `evaluate`:
train week, label-delay gap, test week, the test-set rule) on the `evaluate.folds` weeks just before
`evaluate.first_test_start`. A trial's figures are the mean and std over its 12 fits (4 folds x 3 seeds);
`seed_std` is the std over seeds of the 4-fold mean AP: a difference smaller than it is noise.

`--features` measures the feature groups the same way with the trees alone (`train.boosting`): the handbook-like
18 features, then with the terminal's fraud run, then with the amount's z-scores too (reports/quality/features.csv).

`--linear` measures a third member on the search folds: the chosen recipe averaged with a logistic regression (our
features, log1p + scaling) at several weights, each figure also split by fraud: `visible_auc` (the visible frauds
against every genuine transaction) and `hidden_outranked` (the share of genuine transactions that outrank a hidden
scenario-2 fraud, 0.5 at chance; hidden as `bench/quality_ceiling.py` defines it). A gain in `hidden_outranked`
alone is the draw of those weeks' hidden frauds, not skill (reports/quality/linear.csv).

`--final` then scores the chosen recipe (params.yaml `train`), its network and its trees alone, and the handbook's
reference LR and RF on the backtest's own folds with the same 3 seeds (reports/quality/final.csv), and pairs each
of them with the candidate fit by fit (same fold, same seed): the mean and std of the candidate's lead and the
fits it wins (reports/quality/final_paired.csv).

Run after `make repro`: uv run python -m bench.quality_search [--networks NAME,...] [--trees NAME;...] [--features]
[--linear] [--final]
Writes reports/quality/search.csv (or features.csv, linear.csv, final.csv); `--networks` runs those networks'
trials only and replaces their rows in the table, keeping the others.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

from fraud_detection.evaluation import handbook
from fraud_detection.evaluation.baselines import logistic_regression
from fraud_detection.evaluation.metrics import auc_roc, average_precision, card_precision_at_k
from fraud_detection.evaluation.protocol import Fold, fold_test_set, fold_train_set, folds
from fraud_detection.features.definitions import FEATURES, HEAVY_TAILED
from fraud_detection.features.matrix import feature_matrix
from fraud_detection.models.boosting import fit_trees
from fraud_detection.models.params import BoostingParams, TrainParams
from fraud_detection.models.training import fit, increasing_inputs, stratified_split
from fraud_detection.runtime.project import project_params

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "reports" / "quality"
DATA = Path(os.environ.get("FRAUD_DETECTION_DATA", ROOT / "data"))
SEEDS = (0, 1, 2)
METRICS = ("auc_roc", "average_precision", "card_precision_at_100")

# What is searched: networks x tree settings x the trees' weight (0: the network alone; 1: the trees alone).
# "monotone in ...": network and trees never decrease in those features (`train.increasing`); the others are free.
RATIOS = [f"tx_amount_over_customer_avg_{n}d" for n in (1, 7, 30)]
RISKS = [f"terminal_risk_{n}d" for n in (1, 7, 30)]
ZSCORES_OF_AMOUNT = [f"tx_amount_zscore_customer_{n}d" for n in (1, 7, 30)]
NETWORKS = {
    "128-64": {"hidden_sizes": [128, 64], "increasing": []},
    "128-64 monotone: amount+ratios+risks": {
        "hidden_sizes": [128, 64],
        "increasing": ["tx_amount", *RATIOS, *RISKS],
    },
    "128-64 monotone: amount+ratios+1-day risk": {
        "hidden_sizes": [128, 64],
        "increasing": ["tx_amount", *RATIOS, RISKS[0]],
    },
    "128-64 monotone: amount+ratios+z-scores+1-day risk": {
        "hidden_sizes": [128, 64],
        "increasing": ["tx_amount", *RATIOS, *ZSCORES_OF_AMOUNT, RISKS[0]],
    },
    "256-128": {"hidden_sizes": [256, 128], "increasing": []},
    "128-64 pos_weight 5": {"hidden_sizes": [128, 64], "pos_weight": 5.0, "increasing": []},
}
TREES = {
    "15 leaves, lr .03": {"num_leaves": 15, "learning_rate": 0.03, "min_child_samples": 20, "l2": 1.0},
    "31 leaves, lr .05": {"num_leaves": 31, "learning_rate": 0.05, "min_child_samples": 20, "l2": 1.0},
    "63 leaves, lr .05, 100 per leaf": {"num_leaves": 63, "learning_rate": 0.05, "min_child_samples": 100, "l2": 10.0},
    "7 leaves, lr .05": {"num_leaves": 7, "learning_rate": 0.05, "min_child_samples": 50, "l2": 1.0},
}
WEIGHTS = (0.0, 0.3, 0.5, 0.7, 1.0)
LINEAR_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4)  # the logistic regression's share beside the chosen recipe (`--linear`)

# Feature groups, each added to the ones before it.
RUN = ("terminal_fraud_run_length", "terminal_fraud_run_days", "terminal_days_since_fraud")
ZSCORES = tuple(name for name in FEATURES if "std_amount" in name or "zscore" in name)
BASE = tuple(name for name in FEATURES if name not in RUN + ZSCORES)
FEATURE_SETS = {"counts, means, ratios, rates (18)": BASE, "+ terminal fraud run": BASE + RUN,
                "+ amount z-scores (all)": BASE + RUN + ZSCORES}  # fmt: skip


def search_folds(params) -> list[Fold]:
    """The backtest's protocol on the weeks before its first test week."""
    evaluate, delay = params.evaluate, params.features.label_delay_days
    first = evaluate.first_test_start - timedelta(days=evaluate.folds * evaluate.test_days)
    return folds(first, evaluate.folds, evaluate.train_days, delay, evaluate.test_days)


def backtest_folds(params) -> list[Fold]:
    evaluate = params.evaluate
    return folds(evaluate.first_test_start, evaluate.folds, evaluate.train_days,
                 params.features.label_delay_days, evaluate.test_days)  # fmt: skip


def fold_data(frame: pl.DataFrame, fold_list: list[Fold], delay: int) -> Iterator[tuple[int, pl.DataFrame, ...]]:
    for number, fold in enumerate(fold_list):
        yield number, fold_train_set(frame, fold), fold_test_set(frame, fold, delay)


def member_scores(train_rows: pl.DataFrame, test_rows: pl.DataFrame, config: TrainParams,
                  trees: dict[str, dict]) -> dict[str, np.ndarray]:  # fmt: skip
    """Test scores of the network (config) and of each tree setting, on the same training split."""
    matrix, labels, test = feature_matrix(train_rows), train_rows["tx_fraud"].to_numpy(), feature_matrix(test_rows)
    fit_rows, validation_rows = stratified_split(labels, config.validation_fraction, config.seed)
    increasing = increasing_inputs(FEATURES, config.increasing)
    train = (matrix[fit_rows], labels[fit_rows])
    validation = (matrix[validation_rows], labels[validation_rows])
    no_trees = config.model_copy(update={"boosting": config.boosting.model_copy(update={"weight": 0.0})})
    scores = {"network": fit(train, validation, FEATURES, HEAVY_TAILED, no_trees).scorer.predict_proba(test)}
    for name, settings in trees.items():
        boosting = BoostingParams(**{**config.boosting.model_dump(), **settings})
        scores[name] = fit_trees(train, validation, FEATURES, boosting, config.seed, increasing).predict_proba(test)
    return scores


def run_features(frame: pl.DataFrame, params) -> pl.DataFrame:
    """The trees alone on each feature set, on the search folds with 3 seeds."""
    delay, top_k = params.features.label_delay_days, params.evaluate.top_k
    rows = []
    for number, train_rows, test_rows in fold_data(frame, search_folds(params), delay):
        labels = train_rows["tx_fraud"].to_numpy()
        for seed in SEEDS:
            fit_rows, validation_rows = stratified_split(labels, params.train.validation_fraction, seed)
            for name, columns in FEATURE_SETS.items():
                matrix, test = (rows.select(columns).to_numpy().astype(np.float64) for rows in (train_rows, test_rows))
                train, validation = (
                    (matrix[fit_rows], labels[fit_rows]),
                    (matrix[validation_rows], labels[validation_rows]),
                )
                trees = fit_trees(train, validation, columns, params.train.boosting, seed)
                rows.append({"features": name, "fold": number, "seed": seed,
                             **figures(test_rows, trees.predict_proba(test), top_k)})  # fmt: skip
        print(f"fold {number}: done", flush=True)
    return summarize(rows, ["features"])


def figures(test_rows: pl.DataFrame, scores: np.ndarray, top_k: int) -> dict[str, float]:
    labels = test_rows["tx_fraud"].to_numpy()
    scored = test_rows.select("tx_datetime", "customer_id", "tx_fraud").with_columns(score=pl.Series(scores))
    return {"auc_roc": auc_roc(labels, scores), "average_precision": average_precision(labels, scores),
            "card_precision_at_100": card_precision_at_k(scored, top_k)}  # fmt: skip


def summarize(rows: list[dict], keys: list[str], metrics: tuple[str, ...] = METRICS) -> pl.DataFrame:
    """Mean and std over folds x seeds per trial; seed_std: the std over seeds of the folds' mean AP."""
    table = pl.DataFrame(rows)
    per_seed = table.group_by(*keys, "seed").agg(pl.col("average_precision").mean())
    seed_std = per_seed.group_by(keys).agg(pl.col("average_precision").std().alias("seed_std"))
    aggregates = [pl.len().alias("fits")]
    for metric in metrics:
        aggregates += [pl.col(metric).mean().alias(f"{metric}_mean"), pl.col(metric).std().alias(f"{metric}_std")]
    summary = table.group_by(keys, maintain_order=True).agg(aggregates).join(seed_std, on=keys)
    return summary.sort("average_precision_mean", descending=True).with_columns(pl.selectors.float().round(4))


def run_search(frame: pl.DataFrame, params, networks: list[str], trees: dict[str, dict]) -> pl.DataFrame:
    delay, top_k = params.features.label_delay_days, params.evaluate.top_k
    rows = []
    for number, train_rows, test_rows in fold_data(frame, search_folds(params), delay):
        for seed in SEEDS:
            for network in networks:
                settings = NETWORKS[network]
                config = params.train.model_copy(update={"seed": seed, **settings})
                scores = member_scores(train_rows, test_rows, config, trees)
                for tree_name in trees:
                    for weight in WEIGHTS:
                        if weight == 1.0 and ("monotone" not in network and network != "128-64"):
                            continue  # the trees alone depend on the monotone constraints only
                        blend = (1 - weight) * scores["network"] + weight * scores[tree_name]
                        rows.append({"network": network, "trees": tree_name if weight > 0 else "-",
                                     "trees_weight": weight, "fold": number, "seed": seed,
                                     **figures(test_rows, blend, top_k)})  # fmt: skip
                print(f"fold {number} seed {seed} {network}: done", flush=True)
    # weight 0 rows repeat once per tree setting: one network, one trial
    unique = pl.DataFrame(rows).unique(subset=["network", "trees", "trees_weight", "fold", "seed"], keep="first")
    return summarize(unique.to_dicts(), ["network", "trees", "trees_weight"])


def run_linear(frame: pl.DataFrame, params) -> pl.DataFrame:
    """The chosen recipe averaged with a logistic regression, on the search folds with 3 seeds, split by fraud."""
    from bench.quality_ceiling import TERMINAL_SCENARIO, simulator_truth

    delay, top_k, weight = params.features.label_delay_days, params.evaluate.top_k, params.train.boosting.weight
    scenarios = ["transaction_id", "tx_fraud_scenario"]
    raw = pl.read_parquet(DATA / "01_raw/simulated_transactions.parquet", columns=scenarios)
    truth = simulator_truth(params).select("transaction_id", "terminal_revealed")
    frame = frame.join(raw, on="transaction_id", how="left").join(truth, on="transaction_id", how="left")
    rows = []
    for number, train_rows, test_rows in fold_data(frame, search_folds(params), delay):
        labels = test_rows["tx_fraud"].to_numpy() == 1
        hidden = test_rows.select((pl.col("tx_fraud_scenario") == TERMINAL_SCENARIO) & ~pl.col("terminal_revealed"))
        hidden = hidden.to_series().to_numpy() & labels
        for seed in SEEDS:
            config = params.train.model_copy(update={"seed": seed})
            scores = member_scores(train_rows, test_rows, config, {"trees": {}})
            candidate = (1 - weight) * scores["network"] + weight * scores["trees"]
            linear = logistic_regression(feature_matrix(train_rows), train_rows["tx_fraud"].to_numpy(), FEATURES,
                                         HEAVY_TAILED, seed)(feature_matrix(test_rows))  # fmt: skip
            for share in LINEAR_WEIGHTS:
                blend = (1 - share) * candidate + share * linear
                genuine = np.sort(blend[~labels])
                outranked = 1 - (np.searchsorted(genuine, blend[hidden], "left")
                                 + np.searchsorted(genuine, blend[hidden], "right")) / 2 / len(genuine)  # fmt: skip
                rows.append({"linear_weight": share, "fold": number, "seed": seed, **figures(test_rows, blend, top_k),
                             "visible_auc": auc_roc(labels[~hidden], blend[~hidden]),
                             "hidden_outranked": float(outranked.mean())})  # fmt: skip
            print(f"fold {number} seed {seed}: done", flush=True)
    return summarize(rows, ["linear_weight"], (*METRICS, "visible_auc", "hidden_outranked")).sort("linear_weight")


def run_final(frame: pl.DataFrame, params) -> pl.DataFrame:
    """The chosen recipe and the yardsticks on the backtest's folds, 3 seeds."""
    delay, top_k, weight = params.features.label_delay_days, params.evaluate.top_k, params.train.boosting.weight
    frame = handbook.handbook_features(frame, delay)
    yardsticks: dict[str, Callable] = {"handbook_reference_lr": handbook.logistic_regression,
                                       "handbook_reference_rf": handbook.random_forest}  # fmt: skip
    rows = []
    for number, train_rows, test_rows in fold_data(frame, backtest_folds(params), delay):
        for seed in SEEDS:
            config = params.train.model_copy(update={"seed": seed})
            scores = member_scores(train_rows, test_rows, config, {"trees": {}})
            scores["candidate"] = (1 - weight) * scores["network"] + weight * scores["trees"]
            hb_train, hb_test = (rows.select(handbook.HANDBOOK_FEATURES).to_numpy().astype(np.float64)
                                 for rows in (train_rows, test_rows))  # fmt: skip
            for name, fit_yardstick in yardsticks.items():
                scores[name] = fit_yardstick(hb_train, train_rows["tx_fraud"].to_numpy(), seed)(hb_test)
            for model, values in scores.items():
                rows.append({"model": model, "fold": number, "seed": seed, **figures(test_rows, values, top_k)})
            print(f"fold {number} seed {seed}: done", flush=True)
    paired(rows).write_csv(OUT / "final_paired.csv")
    return summarize(rows, ["model"])


def paired(rows: list[dict]) -> pl.DataFrame:
    """Per model and metric, the candidate's lead over it fit by fit (same fold and seed)."""
    table = pl.DataFrame(rows).unpivot(METRICS, index=["model", "fold", "seed"], variable_name="metric")
    candidate = table.filter(pl.col("model") == "candidate").select("fold", "seed", "metric", lead="value")
    joined = table.filter(pl.col("model") != "candidate").join(candidate, on=["fold", "seed", "metric"])
    lead = pl.col("lead") - pl.col("value")
    return (
        joined.group_by("model", "metric", maintain_order=True)
        .agg(
            lead.mean().alias("lead_mean"),
            lead.std().alias("lead_std"),
            (lead > 0).sum().alias("candidate_wins"),
            pl.len().alias("fits"),
        )
        .with_columns(pl.selectors.float().round(4))
    )


def main(mode: str, networks: list[str], trees: list[str]) -> None:
    params = project_params(root=ROOT)
    frame = pl.read_parquet(DATA / "05_model_input/training_set.parquet")
    run = {"final": run_final, "features": run_features, "linear": run_linear}.get(mode)
    table = run(frame, params) if run else run_search(frame, params, networks, {name: TREES[name] for name in trees})
    path = OUT / f"{mode}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "search" and path.exists() and set(networks) != set(NETWORKS):
        kept = pl.read_csv(path).filter(~pl.col("network").is_in(networks))
        table = pl.concat([kept, table], how="vertical_relaxed").sort("average_precision_mean", descending=True)
    table.write_csv(path)
    with pl.Config(tbl_rows=100, tbl_cols=20, tbl_width_chars=200):
        print(table)
    print(f"wrote {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--final", action="store_true", help="the chosen recipe on the backtest's folds")
    parser.add_argument("--features", action="store_true", help="the feature groups, trees alone, search folds")
    parser.add_argument("--linear", action="store_true", help="a logistic regression averaged in, search folds")
    parser.add_argument("--networks", default=",".join(NETWORKS), help=f"comma-separated, of: {list(NETWORKS)}")
    parser.add_argument("--trees", default=";".join(TREES), help=f"semicolon-separated, of: {list(TREES)}")
    arguments = parser.parse_args()
    mode = next((name for name in ("final", "features", "linear") if getattr(arguments, name)), "search")
    main(mode, arguments.networks.split(","), arguments.trees.split(";"))
