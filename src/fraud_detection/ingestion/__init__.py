"""Validated ingestion: map columns, coerce types, quarantine bad rows with a reason, keep the rest.

One set of rules (rules.py), written against a small expression interface (ops.py) that the polars and the Spark
engines both implement, so the two engines cannot drift apart.
"""
