"""The experiment's HTML page (reports/experiments/<name>.html): the design and the split, SRM, every comparison with
its fixed-horizon and always-valid intervals (a table and a forest plot), the power, and the customers each variant
saw per day."""

from __future__ import annotations

import base64
from html import escape
from io import BytesIO
from typing import Any

import polars as pl

STYLE = """body{font-family:system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
.bad{background:#ffb3b3}.good{background:#c8f0c8}"""
COMPARISON_COLUMNS = ("metric", "kind", "treatment", "control_value", "treatment_value", "difference", "ci_low",
                      "ci_high", "p_value", "sequential_p_value", "p_value_holm", "significant")  # fmt: skip


SHADOW_METRIC_COLUMNS = ("metric", "served_value", "shadow_value", "difference", "ci_low", "ci_high", "p_value")


def experiment_page(name: str, report: dict[str, Any], arrivals: pl.DataFrame) -> str:
    """The page of `report` (experiments.analysis's JSON); `arrivals`: day, variant, customers (first seen that day)."""
    srm = report.get("srm") or {}
    mismatch = bool(srm.get("mismatch"))
    verdict = "MISMATCH: the split is not the design, do not trust the comparisons" if mismatch else "no mismatch"
    srm_line = f"chi-square {_cell(srm.get('chi2'))}, p = {_cell(srm.get('p_value'))}: {verdict}"
    if not srm:
        srm_line = "not tested: no split to check (one variant, or nothing served)"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Experiment {escape(name)}</title>"
        f"<style>{STYLE}</style></head><body><h1>Experiment {escape(name)}</h1>"
        f"<p>{escape(_summary(report))}</p>"
        f"<h2>Variants</h2>{_variants(report)}"
        f"<h2>Sample ratio mismatch</h2><p class='{'bad' if mismatch else 'good'}'>{escape(srm_line)}</p>"
        f"<h2>Comparisons (each treatment against the control)</h2>{_comparisons(report)}"
        f"{_forest_plot(report)}"
        f"<h2>Power</h2>{_power(report)}"
        f"<h2>Shadow (the same transactions, scored again)</h2>{_shadow(report.get('shadow'))}"
        f"<h2>New customers per variant and day</h2>{_arrivals_plot(arrivals)}"
        "</body></html>"
    )


def _summary(report: dict[str, Any]) -> str:
    if report.get("status"):
        return str(report["status"])
    return (f"as of {report.get('as_of')}; control {report.get('control')}; alpha {report.get('alpha')} "
            "(Holm across the metrics, on the always-valid p-values: look every day without inflating false "
            "positives)")  # fmt: skip


def _variants(report: dict[str, Any]) -> str:
    rows = [(name, v.get("share"), v["customers"], v["transactions"], v["labelled"])
            for name, v in report.get("variants", {}).items()]  # fmt: skip
    return _table(("variant", "design share", "customers", "transactions", "labelled (matured)"), rows)


def _comparisons(report: dict[str, Any]) -> str:
    rows, classes = [], []
    for c in report.get("comparisons", []):
        rows.append(tuple(c.get(name) for name in COMPARISON_COLUMNS))
        classes.append("good" if c.get("significant") else "")
    return _table(COMPARISON_COLUMNS, rows, classes) if rows else "<p>No treatment to compare.</p>"


def _power(report: dict[str, Any]) -> str:
    rows = [(treatment, metric, p.get("mde"), p.get("target_effect"), p.get("customers_needed_per_arm"))
            for treatment, metrics in report.get("power", {}).items() for metric, p in metrics.items()]  # fmt: skip
    header = ("treatment", "metric", "minimum detectable effect now", "target effect", "customers needed per arm")
    return _table(header, rows) if rows else "<p>No treatment to compare.</p>"


def _shadow(shadow: dict[str, Any] | None) -> str:
    if not shadow:
        return "<p>No shadow model (serve.shadow) logged predictions.</p>"
    pearson, spearman = (_cell(shadow["score_correlation"][name]) for name in ("pearson", "spearman"))
    summary = (f"served {', '.join(shadow['served_versions'])}, shadow {', '.join(shadow['shadow_versions'])}: "
               f"{shadow['paired']:,} transactions scored by both, {shadow['served_without_shadow']:,} served without "
               f"a shadow score (failed or dropped); decisions agree on {_cell(shadow['decision_agreement'])}; "
               f"score correlation {pearson} (Spearman {spearman})")  # fmt: skip
    flips = [tuple(f[name] for name in ("from", "to", "transactions", "frauds", "fraud_amount", "genuine"))
             for f in shadow["flips"]]  # fmt: skip
    flipped = _table(("served", "shadow", "transactions", "frauds", "fraud amount", "genuine"), flips) if flips else ""
    metrics = [tuple(m[name] for name in SHADOW_METRIC_COLUMNS) for m in shadow["metrics"]]
    latency = shadow["latency"]
    return (
        f"<p>{escape(summary)}</p><h3>Flipped decisions (served, then shadow)</h3>{flipped or '<p>None.</p>'}"
        f"<h3>Both models on the matured labels (paired over customers: shadow - served)</h3>"
        f"{_table(SHADOW_METRIC_COLUMNS, metrics)}{_table(tuple(latency), [tuple(latency.values())])}"
    )


def _forest_plot(report: dict[str, Any]) -> str:
    """Each comparison's difference relative to the control value, with its 95 % interval (thin) and its
    always-valid confidence sequence (thick)."""
    shown = [c for c in report.get("comparisons", []) if c.get("control_value") and c.get("difference") is not None]
    if not shown:
        return ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.45 * len(shown) + 1))
    for y, c in enumerate(shown):
        scale = abs(c["control_value"])
        low, high = c.get("sequential_ci_low"), c.get("sequential_ci_high")
        if low is not None and high is not None:
            ax.plot([low / scale, high / scale], [y, y], color="#9ecae1", linewidth=6, solid_capstyle="butt")
        ax.plot([c["ci_low"] / scale, c["ci_high"] / scale], [y, y], color="#08519c", linewidth=1.5)
        ax.plot(c["difference"] / scale, y, "o", color="#08519c")
    ax.axvline(0, color="#888", linewidth=1)
    ax.set_yticks(range(len(shown)), [f"{c['metric']} ({c['treatment']})" for c in shown])
    ax.set_xlabel("difference relative to the control's value")
    return _png(fig, plt)


def _arrivals_plot(arrivals: pl.DataFrame) -> str:
    if arrivals.is_empty():
        return "<p>No served predictions yet.</p>"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3))
    for (variant,), rows in arrivals.sort("day").group_by("variant", maintain_order=True):
        ax.plot(rows["day"].to_list(), rows["customers"].to_list(), marker="o", label=str(variant))
    ax.set_ylabel("customers first seen")
    ax.legend()
    fig.autofmt_xdate()
    return _png(fig, plt)


def _png(fig: Any, plt: Any) -> str:
    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return f"<img alt='plot' src='data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}'>"


def _table(header: tuple[str, ...], rows: list[tuple], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        f"<tr class='{cls}'>" + "".join(f"<td>{escape(_cell(v))}</td>" for v in row) + "</tr>"
        for row, cls in zip(rows, classes or [""] * len(rows), strict=True)
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)
