"""One HTML page per monitoring run: the decision and why, our drift table, the live quality of the champion and
of the previous champion, then Evidently's two reports (drift of the features and the score; quality on the
labelled window), each embedded whole in a frame of its own (their scripts do not meet)."""

from __future__ import annotations

from html import escape
from typing import Any

import polars as pl

LEVEL_COLOURS = {"none": "#ffffff", "mild": "#fff3c4", "moderate": "#ffd59e", "severe": "#ffb3b3"}
STYLE = """body{font-family:system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
.action{font-size:28px;font-weight:600}iframe{width:100%;height:1600px;border:1px solid #ccc}"""
QUALITY = ("version", "rows", "frauds", "auc_roc", "average_precision", "card_precision_at_k")
HEALTH = (
    "day",
    "requests",
    "per second",
    "latency p50 ms",
    "p95",
    "p99",
    "error rate",
    "fallback rate",
    "degraded rate",
)
VOLUME_COLOURS = {"ok": "#ffffff", "drop": "#ffd59e", "spike": "#ffd59e"}


def report_page(decision: dict[str, Any], table: pl.DataFrame, drift_html: str, quality_html: str) -> str:
    windows = ", ".join(f"{name} {w['first']}..{w['last']} ({w['rows']:,} rows)"
                        for name, w in decision["windows"].items())  # fmt: skip
    reasons = "".join(f"<li>{escape(r)}</li>" for r in decision["reasons"])
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Monitoring {escape(_day(decision))}</title>"
        f"<style>{STYLE}</style></head><body><h1>Monitoring report, {escape(_day(decision))}</h1>"
        f"<p>{escape(windows)}; current window from {escape(decision['source'])}</p>"
        f"<p class='action'>action: {escape(decision['action'])}</p><ul>{reasons}</ul>"
        f"<p>Act on it: <code>fraud-detection monitor act</code></p>"
        f"<h2>Drift of every feature and the score (every row)</h2>{_drift_table(table)}"
        f"<h2>Live quality on the labelled window</h2>{_quality_table(decision)}"
        f"<p>Live quality ({escape(_live_source(decision))}): {escape(_live(decision))}</p>"
        f"<h2>Data quality</h2>{_data_quality(decision)}"
        f"<h2>System health (served requests, per day)</h2>{_health_table(decision)}"
        f"<h2>Evidently: data and prediction drift (sampled)</h2>{_frame(drift_html)}"
        f"<h2>Evidently: model quality on the labelled window against the training window</h2>{_frame(quality_html)}"
        "</body></html>"
    )


def _day(decision: dict[str, Any]) -> str:
    return decision["windows"]["current"]["last"]


def _drift_table(table: pl.DataFrame) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in table.columns)
    rows = []
    for row in table.iter_rows(named=True):
        cells = "".join(f"<td>{escape(_cell(v))}</td>" for v in row.values())
        rows.append(f"<tr style='background:{LEVEL_COLOURS.get(row.get('level'), '#fff')}'>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _quality_table(decision: dict[str, Any]) -> str:
    models = [("champion", decision["champion"]), ("previous champion", decision["previous_champion"])]
    head = "".join(f"<th>{c}</th>" for c in ("model", *QUALITY))
    rows = "".join(f"<tr><td>{name}</td>{''.join(f'<td>{escape(_cell(q[k]))}</td>' for k in QUALITY)}</tr>"
                   for name, q in models if q)  # fmt: skip
    return f"<table><tr>{head}</tr>{rows}</table>"


def _live_source(decision: dict[str, Any]) -> str:
    live = decision.get("live_quality") or {}
    return ("the champion's served scores against the labels that came back (matured)" if live.get("source") == "served"
            else "no labelled served predictions yet: the champion re-scored on the labelled window")  # fmt: skip


def _live(decision: dict[str, Any]) -> str:
    live = decision.get("live_quality") or {}
    return ", ".join(f"{k} {_cell(live.get(k))}" for k in QUALITY if k != "version")


def _data_quality(decision: dict[str, Any]) -> str:
    quality = decision.get("data_quality")
    if not quality:
        return "<p>no data</p>"
    quarantine, degraded = quality["quarantine"], quality["degraded"]
    lines = [
        f"ingest: {quarantine['rows_quarantined']:,} of {quarantine['rows_read']:,} rows quarantined "
        f"({_cell(quarantine['rate'])}) {quarantine['by_reason'] or ''}",
        f"served answers degraded: {degraded['degraded']:,} of {degraded['answers']:,} ({_cell(degraded['rate'])}) "
        f"{degraded['by_reason'] or ''}",
    ]
    volume = "".join(f"<tr style='background:{VOLUME_COLOURS[v['level']]}'><td>{v['day']}</td><td>{v['transactions']:,}"
                     f"</td><td>{_cell(v['reference_per_day'])}</td><td>{_cell(v['ratio'])}</td><td>{v['level']}</td></tr>"
                     for v in quality["volume"])  # fmt: skip
    head = "<tr><th>day</th><th>served</th><th>reference a day</th><th>ratio</th><th>level</th></tr>"
    return "".join(f"<p>{escape(line)}</p>" for line in lines) + (f"<table>{head}{volume}</table>" if volume else "")


def _health_table(decision: dict[str, Any]) -> str:
    days = decision.get("system_health") or []
    if not days:
        return "<p>nothing served</p>"
    head = "".join(f"<th>{c}</th>" for c in HEALTH)
    rows = "".join("<tr>" + "".join(f"<td>{escape(_cell(value))}</td>" for value in (
        d["day"], d["requests"], d["throughput_per_s"], *d["latency_ms"].values(), d["error_rate"], d["fallback_rate"],
        d["degraded_rate"])) + "</tr>" for d in days)  # fmt: skip
    return f"<table><tr>{head}</tr>{rows}</table>"


def _frame(page: str) -> str:
    return f'<iframe srcdoc="{escape(page, quote=True)}"></iframe>'


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)
