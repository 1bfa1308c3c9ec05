"""Batch prediction: a day's transactions scored with the champion, gated, and published as predictions, an
investigation queue and a per-card risk table (polars or Spark)."""
