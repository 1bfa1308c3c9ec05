"""Does the experiment analysis keep its promises? Simulated A/A and A/B experiments, each looked at every day.

Each of `--runs` experiments randomises `--customers` customers, half to each arm; a customer transacts every day
at its own rate (Gamma) and its transactions share its own risk of being flagged (Beta), so that a customer's
transactions are correlated. The metric is the flagged rate (a ratio of per-customer sums, as the review rate),
compared after each of 14 days of arrivals by the analysis' statistics: the delta method, the fixed-horizon test
and the mSPRT (tau^2 from the target effect, as `analyze` sets it).

- `aa_false_positive_rate` (no effect): the fixed-horizon test at the end only; the same test looked at every day,
  any rejection counting (naive peeking: well above alpha); the always-valid p-value's running minimum at every
  day (at most alpha).
- `power`: the share of experiments with a planted relative effect (`--effect`, the target) that the fixed-horizon
  test at the end and the sequential test at any day detect.
Results: reports/experiments/validation.json.

Run: uv run python -m bench.experiment_validation [--runs 500] [--customers 30000] [--effect 0.1] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.timing import machine
from fraud_detection.experiments.statistics import compare, mixing_variance, msprt_p_value, ratio, running_min

RESULT = Path(__file__).resolve().parents[1] / "reports" / "experiments" / "validation.json"
LOOKS, ALPHA, CHUNK = 14, 0.05, 50  # CHUNK: experiments simulated at once
DAILY_RATE = (0.5, 2.0)  # Gamma(shape, scale): a customer's transactions per day, mean 1
FLAGGED_RISK = (0.5, 20.0)  # Beta(a, b): a customer's chance that a transaction is flagged, mean 2.4 %


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--customers", type=int, default=30_000, help="per experiment, half in each arm")
    parser.add_argument("--effect", type=float, default=0.1, help="the planted relative effect and the target")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    aa = _rejections(args.runs, args.customers, 0.0, args.effect, rng)
    ab = _rejections(args.runs, args.customers, args.effect, args.effect, rng)
    record = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
        "alpha": ALPHA, "runs": args.runs, "looks": LOOKS, "seed": args.seed, "customers": args.customers,
        "relative_effect": args.effect, "monte_carlo_se_at_alpha": round(math.sqrt(ALPHA * (1 - ALPHA) / args.runs), 4),
        "aa_false_positive_rate": {
            "fixed_horizon": _share(aa["fixed"][:, -1]),
            "naive_daily_peeking": _share(aa["fixed"].any(axis=1)),
            "sequential_daily_peeking": _share(aa["sequential"][:, -1]),
        },
        "power": {"fixed_horizon": _share(ab["fixed"][:, -1]), "sequential": _share(ab["sequential"][:, -1])},
    }  # fmt: skip
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


def _rejections(runs: int, customers: int, effect: float, target: float, rng: np.random.Generator) -> dict:
    """Per experiment (rows) and look (columns): whether the fixed-horizon test rejects at that look, and whether
    the always-valid test has rejected by then."""
    chunks = [_experiments(min(CHUNK, runs - start), customers, effect, target, rng) for start in range(0, runs, CHUNK)]
    return {name: np.concatenate([chunk[name] for chunk in chunks]) for name in ("fixed", "sequential")}


def _experiments(runs: int, customers: int, effect: float, target: float, rng: np.random.Generator) -> dict:
    """`runs` experiments at once: the treatment is the second half of the customers (exchangeable draws)."""
    rate = rng.gamma(*DAILY_RATE, (runs, customers))
    risk = rng.beta(*FLAGGED_RISK, (runs, customers))
    risk[:, customers // 2 :] = np.minimum(1.0, risk[:, customers // 2 :] * (1 + effect))
    transactions, flagged = np.zeros((runs, customers)), np.zeros((runs, customers))
    fixed, sequential = np.zeros((runs, LOOKS)), np.ones((runs, LOOKS))
    for look in range(LOOKS):
        today = rng.poisson(rate)
        transactions += today
        flagged += rng.binomial(today, risk)
        control = ratio(flagged[:, : customers // 2], transactions[:, : customers // 2])
        treatment = ratio(flagged[:, customers // 2 :], transactions[:, customers // 2 :])
        contrast = compare(treatment, control, ALPHA)
        variance = contrast.se**2
        fixed[:, look] = contrast.p_value
        tau2 = mixing_variance(control.value, target, variance)
        sequential[:, look] = msprt_p_value(contrast.difference, variance, tau2)
    return {"fixed": fixed < ALPHA, "sequential": running_min(sequential, axis=1) < ALPHA}


def _share(rejected: np.ndarray) -> float:
    return round(float(rejected.mean()), 4)


if __name__ == "__main__":
    main()
