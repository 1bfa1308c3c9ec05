"""The online_learning pipeline end to end on the small world: a registered champion, three replayed days with card
testing from the first, a poisoned day; the report holds every model with the keys the issue names, and the plot's
table one row per day."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from fraud_detection.datasets import CSVFolderDataset, JSONDataset
from fraud_detection.pipelines.online_learning import create_pipeline
from fraud_detection.registry.candidate import CandidateDataset
from fraud_detection.registry.promotion import force_promote
from fraud_detection.registry.registry import RegistryAddress
from fraud_detection.runtime.params import Params
from fraud_detection.simulation.simulator import SimulationConfig, simulate_transactions
from tests.conftest import changed
from tests.pipelines.kedro_catalog import param_entries

MODELS = ("static", "online", "online_unguarded", "online_split", "river_logistic")
METRICS = {"average_precision", "card_precision_at_100", "auc_roc"}


@pytest.fixture(scope="module")
def report(tmp_path_factory, params: Params, small_champion) -> tuple[dict, Path]:
    root = tmp_path_factory.mktemp("online_learning")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    CandidateDataset(str(root / "candidate"), uri, "test", str(root / "artifacts")).save(small_champion)
    address = RegistryAddress(uri, str(root / "registry.lock"))
    registry = address.open(params.register.model_name, create=True)
    force_promote(registry, int(registry.register(small_champion.run, small_champion.tags).version), "tests", "")
    simulate = changed(params.simulate, profile="small")
    card_testing = {"kind": "new_fraud_pattern", "start_day": 0, "days": 3, "customers_per_day": 10,
                    "tx_per_card": 3, "min_amount": 1.0, "max_amount": 5.0, "night_end_hour": 5.0}  # fmt: skip
    small = changed(params, simulate=simulate.model_dump(), online=changed(
        params.online, update_every=500, rate_warmup=200, min_validation_frauds=5,
        eval={"days": 3, "drift": [card_testing], "poison": {"day": 1, "fraction": 0.3, "seed": 0},
              "history_days": 40, "river_warmup_days": 7, "seed": 0}).model_dump())  # fmt: skip
    catalog = DataCatalog({
        "transactions": MemoryDataset(simulate_transactions(SimulationConfig.from_params(simulate))),
        "model_registry": MemoryDataset(address, copy_mode="assign"),
        "promotion": MemoryDataset({"aliases": {"champion": 1}}),
        "online_learning_report": JSONDataset(str(root / "online_learning.json")),
        "online_learning_plots": CSVFolderDataset(str(root / "plots")),
        **param_entries(create_pipeline(), small),
    })  # fmt: skip
    SequentialRunner().run(create_pipeline(), catalog)
    return json.loads((root / "online_learning.json").read_text()), root


def test_the_report_holds_every_model_all_drifted_and_daily(report):
    figures, _ = report
    assert set(figures["models"]) == set(MODELS)
    for name in MODELS:
        model = figures["models"][name]
        assert set(model["all"]) == METRICS and set(model["drifted"]) == METRICS
        assert [day["drifted"] for day in model["daily"]] == [True, True, True]
        assert {"updates_published", "updates_rolled_back"} <= set(model)
    assert figures["models"]["static"]["updates_published"] == 0
    assert figures["models"]["online_unguarded"]["updates_published"] >= 1
    assert figures["labels"]["investigation"] > 0 and figures["labels"]["delayed"] > 0


def test_the_poisoning_section_compares_clean_guarded_and_unguarded(report):
    poisoning = report[0]["poisoning"]
    assert poisoning["labels_flipped"] > 0
    for name in ("clean", "guarded", "unguarded"):
        assert 0 <= poisoning[name]["average_precision"] <= 1


def test_the_plot_table_has_a_row_per_day_and_a_column_per_model(report):
    import polars as pl

    table = pl.read_csv(report[1] / "plots" / "daily_average_precision.csv")
    assert table.height == 3 and set(table.columns) == {"day", *MODELS}
