"""The online learner's cost: one update (a micro-batch of 1,000 examples, its replay, its shadow validation), beside
the same update unguarded (no validation) and the champion scoring the batch; a checkpoint's publication (an MLflow
run and a registry version); and how much faster than the label stream it learns at 10x the default traffic.

The champion is the registry's; the examples are the features table's labelled rows (the served vectors' offline
twins); the validation window holds `online.validation_days` of held-out examples, the reservoir is full.

Run: uv run python -m bench.bench_online [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

from bench.timing import median_seconds, save

BATCH = 1000
DEFAULT_LABELS_PER_DAY = 9_900  # the default world's transactions a day, each labelled once
TRAFFIC_FACTOR = 10


def main(runs: int) -> None:
    from fraud_detection.features.definitions import FEATURES, MICROS_PER_DAY
    from fraud_detection.features.matrix import feature_matrix
    from fraud_detection.online.learner import Examples, OnlineLearner, schema_ranges, trees_proba
    from fraud_detection.online.runner import register_scorer
    from fraud_detection.pipelines.online_learning.nodes import load_champion
    from fraud_detection.registry.registry import RegistryAddress
    from fraud_detection.runtime.project import project_context

    context = project_context(None)
    params = context.params.online
    champion, schema = load_champion(context.catalog.load("model_registry"), {}, context.params.register.model_name)
    rows = pl.read_parquet("data/04_feature/transaction_features.parquet").tail(120_000)
    x = feature_matrix(rows)
    known = rows["tx_datetime"].dt.epoch("us").to_numpy() + 7 * MICROS_PER_DAY
    examples = Examples(x, rows["tx_fraud"].to_numpy().astype(np.int8), rows["transaction_id"].to_numpy(),
                        np.zeros(len(x), bool), known, trees_proba(champion, x))  # fmt: skip
    ranges = schema_ranges(schema, FEATURES)

    def learner(guarded: bool) -> OnlineLearner:
        made = OnlineLearner(champion, ranges, params, guarded=guarded)
        made.remember(examples.take(slice(0, 100_000)))  # a full reservoir and a week's validation window
        return made

    guarded, unguarded = learner(True), learner(False)
    batches = iter(range(100_000, 120_000, BATCH))

    def update(model: OnlineLearner):
        def work() -> None:
            start = next(batches, 100_000)
            batch = examples.take(slice(start, start + BATCH))
            model.learn(batch, int(batch.known_us.max()))

        return work

    batch = examples.take(slice(100_000, 100_000 + BATCH))
    figures: dict[str, object] = {"runs": runs, "batch": BATCH, "replay_ratio": params.replay_ratio,
                                  "validation_rows": len(guarded.window)}  # fmt: skip
    timings = {
        "update_guarded": update(guarded),
        "update_unguarded": update(unguarded),
        "score_batch": lambda: champion.predict_proba(batch.x),
    }
    for name, work in timings.items():
        batches = iter(range(100_000, 120_000, BATCH))
        median, all_runs = median_seconds(work, runs)
        figures[f"{name}_median_s"] = round(median, 4)
        figures[f"{name}_runs_s"] = [round(t, 4) for t in all_runs]
    with tempfile.TemporaryDirectory(prefix="bench-online-") as folder:
        registry = RegistryAddress(f"sqlite:///{folder}/mlflow.db", f"{folder}/lock").open("bench", create=True)
        tags = {"feature_schema": json.dumps(schema)}
        publish, publish_runs = median_seconds(
            lambda: register_scorer(registry, guarded.scorer(), tags, "bench", str(Path(folder) / "artifacts")),
            max(3, runs // 4),
        )
    figures["publish_median_s"] = round(publish, 3)
    figures["publish_runs_s"] = [round(t, 3) for t in publish_runs]
    per_update = figures["update_guarded_median_s"] + publish  # every update published: the worst case
    arrival = TRAFFIC_FACTOR * DEFAULT_LABELS_PER_DAY / 86_400
    figures["labels_per_second_learned"] = round(BATCH / per_update, 1)
    figures["labels_per_second_at_10x_traffic"] = round(arrival, 2)
    figures["headroom_at_10x_traffic"] = round(BATCH / per_update / arrival, 1)
    figures["validation_overhead_ratio"] = round(figures["update_guarded_median_s"] /
                                                 figures["update_unguarded_median_s"], 2)  # fmt: skip
    save("online", figures)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    main(parser.parse_args().runs)
