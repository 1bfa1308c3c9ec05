"""The champion imported into BentoML's model store from `models:/<name>@champion`, labelled with its registry
version; it scores exactly as the registry's model. Runs in a subprocess with its own BENTOML_HOME.

The subprocess reads its rows from a pickle, not parquet: Arrow's parquet reader can leave a worker thread that
aborts the interpreter at exit now and then ("terminate called without an active exception", apache/arrow#34314),
which failed this test once in CI after the subprocess had printed its answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

from fraud_detection.features.definitions import FEATURES
from fraud_detection.registry.loading import load_model
from fraud_detection.registry.promotion import force_promote
from tests.registry.conftest import Store

IMPORT_AND_SCORE = textwrap.dedent("""
    import json, sys
    import bentoml, pandas as pd
    from fraud_detection.registry.bento import import_alias
    from fraud_detection.registry.registry import RegistryAddress

    uri, lock, name, rows_path = sys.argv[1:]
    registry = RegistryAddress(uri, lock).open(name)
    model = import_alias(registry, "champion")
    again = import_alias(registry, "champion")
    scores = bentoml.mlflow.load_model(str(model.tag)).predict(pd.read_pickle(rows_path))["fraud_probability"]
    print(json.dumps({"tag": str(model.tag), "again": str(again.tag), "labels": model.info.labels,
                      "stored": [str(m.tag) for m in bentoml.models.list()], "scores": scores.tolist()}))
""")


def test_the_champion_is_imported_into_bentoml_with_its_registry_version(store: Store, tmp_path) -> None:
    registry = store.registry("bento")
    for run in store.runs:
        registry.register(run, {"git_commit": "abc123", "training_set_md5": "d41d8"})
    force_promote(registry, 2, "tester", "package me")
    rows = store.window.select(FEATURES).head(50).to_pandas()
    rows.to_pickle(tmp_path / "rows.pkl")
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml")}
    run = subprocess.run(
        [sys.executable, "-c", IMPORT_AND_SCORE, store.uri, str(store.root / "bento.lock"), "bento",
         str(tmp_path / "rows.pkl")],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    tag = f"bento:v2-{store.runs[1]['run_id'][:12]}"
    assert result["tag"] == result["again"] == tag and result["stored"] == [tag], "imported once"
    labels = result["labels"]
    assert labels["registry_version"] == "2" and labels["registry_alias"] == "champion"
    assert labels["registry_model"] == "bento" and labels["git_commit"] == "abc123"
    assert labels["mlflow_run_id"] == store.runs[1]["run_id"]
    expected = load_model(registry, 2).predict_frame(rows)
    np.testing.assert_allclose(result["scores"], expected, rtol=0, atol=1e-7)
