"""Default-size simulation (5,000 customers, 10,000 terminals, 183 days).

Baseline: the handbook's own pandas generator takes about 150 s for this on a 2-core machine (published figure,
quoted in our issue tracker); we cannot run it side by side (GPL), so the ratio is against that figure. We also
report writing the result to parquet, which the simulate stage does after generating.

Run: uv run python -m bench.bench_simulate [--runs 5]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.timing import default_size_simulation, median_seconds, save
from fraud_detection.datasets import ParquetDataset
from fraud_detection.simulation.simulator import simulate_transactions

HANDBOOK_SECONDS = 150.0


def main(runs: int) -> None:
    config = default_size_simulation()
    generate, generate_runs = median_seconds(lambda: simulate_transactions(config), runs)
    frame = simulate_transactions(config)
    with tempfile.TemporaryDirectory() as tmp:
        dataset = ParquetDataset(str(Path(tmp) / "t.parquet"))
        write, write_runs = median_seconds(lambda: dataset.save(frame), runs)
    save(
        "simulate",
        {
            "runs": runs,
            "transactions": frame.height,
            "generate_median_s": round(generate, 3),
            "generate_runs_s": [round(t, 3) for t in generate_runs],
            "write_parquet_median_s": round(write, 3),
            "write_parquet_runs_s": [round(t, 3) for t in write_runs],
            "transactions_per_s": round(frame.height / generate),
            "handbook_baseline_s": HANDBOOK_SECONDS,
            "speedup_vs_handbook": round(HANDBOOK_SECONDS / generate, 1),
            "target_s": 15.0,
        },
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    main(parser.parse_args().runs)
