"""The Kedro pipelines: one package per stage, its nodes (pure functions) and its wiring (pipeline.py)."""
