"""`dvc repro` end to end on a copy of the project (small profile): the stages run, the register stage registers
and gates, the registry CLI works on the result, and an ingest over the quarantine ceiling fails the stage while the
previous outputs and dvc.lock stay as they were.

Hermetic: the project is the committed tree (`tests/project_copy.py`: `git archive HEAD`), its commands run its own
src/. The states the tests read are module-scoped fixtures, built once and in order whatever test asks first:
`project` (built, nothing run), `reproduced` (the first `dvc repro`), `second_candidate` (the first candidate
registered again, then a second one trained with train.seed + 1). So any test passes alone
(`pytest -m slow -k <name>`). A test that changes the project beyond what those fixtures define (params, the feature
store, the prediction log, an extra Kedro environment) puts it back afterwards (`restored`); registry moves cannot be
undone, so the tests that make them read the aliases as they find them."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import nbformat
import polars as pl
import pytest
import requests
import yaml

from fraud_detection.features.definitions import FEATURES
from tests.http_helpers import free_port, wait_ready
from tests.ingestion.messy_source import COLUMN_MAP, messy_source
from tests.project_copy import committed_project, project_env, set_params, use_small_profile

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

# pytest-timeout counts fixtures: a test run alone sets up the shared `dvc repro`s itself (two, for the register and
# HTTP tests: minutes each on 2 cores)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def _dvc(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        check=False,
        cwd=project,
        env=project_env(project),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _registry_cli(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fraud_detection.cli", "registry", *args],
        check=False, cwd=project, env=project_env(project), capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _kedro_run(project: Path, *args: str) -> subprocess.CompletedProcess:
    kedro = str(Path(sys.executable).parent / "kedro")
    return subprocess.run([kedro, "run", *args], cwd=project, env=project_env(project), capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip


def _promotion(project: Path) -> dict:
    return json.loads((project / "reports" / "promotion.json").read_text())


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed tree (`git archive HEAD`, its own git repository and DVC project), small profile; nothing run."""
    return use_small_profile(committed_project(tmp_path_factory.mktemp("dvc_repro") / "project"))


@pytest.fixture(scope="module")
def reproduced(project: Path) -> Path:
    """The shared first `dvc repro`: every stage, on the committed params (small profile)."""
    run = _dvc(project, "repro")
    assert run.returncode == 0, run.stdout + run.stderr
    return project


@dataclass(frozen=True)
class Candidates:
    """What `second_candidate` did and saw, for the tests to check."""

    first: dict  # reports/promotion.json of the first `dvc repro`
    again: subprocess.CompletedProcess  # `dvc repro -f -s register`: the same candidate registered again
    again_promotion: dict  # reports/promotion.json after that
    versions_after_again: list[int]  # the registry's versions after that (`registry status --json`)
    second: dict  # reports/promotion.json after `dvc repro` with train.seed + 1


@pytest.fixture(scope="module")
def second_candidate(project: Path, reproduced: Path) -> Candidates:
    """The registry with two versions: the first candidate registered again (which must change nothing), then a new
    candidate (train.seed + 1 over the committed seed: train, evaluate and register run again, and the rest after
    them). The first candidate's records are taken before the second exists."""
    first = _promotion(project)
    again = _dvc(project, "repro", "-f", "-s", "register")
    again_promotion = _promotion(project)
    status = json.loads(_registry_cli(project, "status", "--json").stdout)
    seed = yaml.safe_load((project / "params.yaml").read_text())["train"]["seed"]
    set_params(project, train={"seed": seed + 1})  # a new candidate: train, evaluate and register run again
    run = _dvc(project, "repro")
    assert run.returncode == 0, run.stdout + run.stderr
    return Candidates(first, again, again_promotion, [v["version"] for v in status["versions"]], _promotion(project))


@pytest.fixture
def restored(project: Path, tmp_path: Path) -> Iterator[Callable[..., None]]:
    """`restored(*paths)`: those paths of the project (files or folders) are put back as they were when named, after
    the test, whatever its outcome; one absent then is removed."""
    kept: list[tuple[Path, Path | None]] = []

    def keep(*names: str) -> None:
        for name in names:
            path = project / name
            backup = tmp_path / "kept" / name if path.exists() else None
            if backup is not None:
                backup.parent.mkdir(parents=True, exist_ok=True)
                (shutil.copytree if path.is_dir() else shutil.copy2)(path, backup)
            kept.append((path, backup))

    yield keep
    for path, backup in reversed(kept):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        if backup is not None:
            (shutil.copytree if backup.is_dir() else shutil.copy2)(backup, path)


def _snapshot(project: Path) -> dict[str, bytes]:
    paths = [*(project / "data").rglob("*"), project / "reports" / "ingest.json", project / "dvc.lock"]
    return {str(p.relative_to(project)): p.read_bytes() for p in sorted(paths) if p.is_file()}


@pytest.mark.usefixtures("reproduced")  # the first `dvc repro`, every stage: it asserts its exit status
def test_repro_runs_every_stage(project: Path) -> None:
    lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    assert set(lock) == set(yaml.safe_load((project / "dvc.yaml").read_text())["stages"])
    summary = yaml.safe_load((project / "reports" / "ingest.json").read_text())
    assert summary["rows_read"] == summary["rows_accepted"] > 0
    assert _dvc(project, "status").stdout.strip().endswith("up to date.")
    metrics = _dvc(project, "metrics", "show", "--json")
    assert metrics.returncode == 0 and "card_precision_at_100" in metrics.stdout
    plots = _dvc(project, "plots", "show", "--json")
    assert plots.returncode == 0 and "roc_candidate.csv" in plots.stdout, plots.stderr
    for notebook in (project / "notebooks").glob("*.ipynb"):  # executed by papermill, rendered to HTML
        executed = nbformat.read(project / "reports" / "notebooks" / notebook.name, as_version=4)
        outputs = [o for cell in executed.cells for o in cell.get("outputs", [])]
        assert not [o for o in outputs if o.output_type == "error"], notebook.name
        assert [o for o in outputs if "image/png" in o.get("data", {})], f"{notebook.name} has figures"
        html = project / "reports" / "notebooks" / f"{notebook.stem}.html"
        assert html.stat().st_size > 100_000, f"{html.name}: figures embedded"


@pytest.mark.usefixtures("reproduced")
def test_monitor_reports_drift_decides_and_monitor_run_runs_it_again(project: Path) -> None:
    decision = json.loads((project / "reports" / "monitoring.json").read_text())
    assert decision["action"] in ("none", "investigate", "retrain", "rollback") and decision["reasons"]
    assert set(decision["columns"]) == {*FEATURES, "score"} and decision["source"] == "features"
    day = decision["windows"]["current"]["last"]
    assert (project / "reports" / "drift" / f"{day}.html").stat().st_size > 100_000
    assert "quantile_psi" in (project / "reports" / "drift" / f"{day}-drift.json").read_text()
    table = pl.read_csv(project / "reports" / "drift_table.csv")
    assert table["column"].to_list() == [*FEATURES, "score"] and table["psi"].is_not_null().all()
    before = (project / "reports" / "monitoring.json").stat().st_mtime_ns
    env = project_env(project, PATH="/usr/bin:/bin")  # an unactivated environment: dvc and kedro found by the CLI
    run = subprocess.run([sys.executable, "-m", "fraud_detection.cli", "monitor", "run"], check=False, cwd=project,
                         env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0 and "monitor.act is false" in run.stdout, run.stdout + run.stderr
    assert (project / "reports" / "monitoring.json").stat().st_mtime_ns != before, "forced: DVC saw no change"
    assert _dvc(project, "status").stdout.strip().endswith("up to date.")


def test_register_is_idempotent_gates_new_candidates_and_the_cli_operates_the_registry(
    project: Path, second_candidate: Candidates
) -> None:
    first = second_candidate.first
    assert first["version"] == 1 and first["decision"]["alias"] == "champion" and first["aliases"] == {"champion": 1}
    assert second_candidate.again.returncode == 0, second_candidate.again.stdout + second_candidate.again.stderr
    again = second_candidate.again_promotion
    assert again["version"] == 1 and again["events"] == [], "the same candidate: no new version, no alias move"

    assert second_candidate.versions_after_again == [1]
    lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"]  # the training set: the same for both seeds
    [training_set] = lock["training_set"]["outs"]
    store = f"sqlite:///{project / 'data/mlflow/mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=store, registry_uri=store)  # not the process's global registry
    tags = client.get_model_version("fraud-detector", "1").tags
    assert tags["training_set_md5"] == training_set["md5"], "the version names the DVC hash of its training set"
    lineage = {"git_commit", "params_hash", "feature_service", "feature_service_version", "feature_schema",
               "library_versions", "training_seconds", "model_bytes", "backtest.average_precision"}  # fmt: skip
    assert lineage <= set(tags)

    second = second_candidate.second  # after the fixture's `dvc repro` with train.seed + 1
    assert second["version"] == 2 and second["champion_before"] == 1
    assert second["decision"]["champion"] is not None, "gated against the champion on the same window"
    assert second["decision"]["alias"] == "challenger", "passing or not: champion only through a rollout"
    assert second["decision"]["via_rollout"] == second["decision"]["passed"]

    # still 1 (register.promotion: rollout), unless a test before this one moved it (the HTTP test rolls back),
    # hence the registry's word
    champion = json.loads(_registry_cli(project, "status", "--json").stdout)["aliases"]["champion"]
    other = 3 - champion
    forced = _registry_cli(project, "promote", str(other), "--force", "--reason", "test", "--actor", "tester")
    assert forced.returncode == 0 and f"version {other} is champion (forced" in forced.stdout, forced.stderr
    rolled = _registry_cli(project, "rollback", "--reason", "regression", "--actor", "oncall")
    assert rolled.returncode == 0 and f"from version {other} to version {champion}" in rolled.stdout, rolled.stderr
    history = json.loads(_registry_cli(project, "history", "--json").stdout)
    moves = [(e["action"], e["version"]) for e in history if e["alias"] == "champion"]
    assert moves[-2:] == [("force-promote", other), ("rollback", champion)]
    assert history[-1]["actor"] == "oncall" and history[-1]["reason"] == "regression"
    unknown = _registry_cli(project, "promote", "7")
    assert unknown.returncode == 2 and "has no version 7" in unknown.stderr
    assert json.loads(_registry_cli(project, "history", "--json").stdout) == history, "bad input changes nothing"
    gated = _registry_cli(project, "promote", "2")
    assert gated.returncode == 0 and "gate window" in gated.stdout, gated.stderr


@pytest.mark.usefixtures("second_candidate")  # two versions: a champion and another
def test_the_service_over_http_serves_what_training_saw_routes_shadows_reloads_and_refuses_bad_input(
    project: Path, restored: Callable[..., None]
) -> None:
    """`bentoml serve` from the project root after `dvc repro` (2 workers): the last day replayed through /predict
    gets the training set's features; customers keep their A/B variant and the shares follow the params; the shadow
    is logged, never served; a registry rollback serves the previous champion without a restart or a failed
    request; bad input is a 4xx naming the field; a clean stop leaves every prediction in the log."""
    restored("params.yaml", "data/05_feature_store", "data/08_serving")  # dvc status stays up to date after it
    champion = json.loads(_registry_cli(project, "status", "--json").stdout)["aliases"]["champion"]
    challenger = 3 - champion
    _registry(project).move("challenger", challenger, "promote", "tester", "A/B test")
    last_day = _materialize_before_the_last_day(project)
    set_params(project, serve={"ab": {"salt": "http", "variants": {"champion": 0.7, "challenger": 0.3}},
                               "shadow": "challenger", "reload_interval_s": 1})  # fmt: skip
    log_folder = project / "data/08_serving/predictions"
    shutil.rmtree(log_folder, ignore_errors=True)
    served = 0
    with _service(project) as url, requests.Session() as http:
        replayed = _replay_the_last_day(http, url, project, last_day)
        served += len(replayed)
        served += _check_ab_routing(http, url, project, champion, challenger)
        served += _check_bad_input_is_refused_by_name(http, url)
        served += _check_batches_and_admin(http, url)
        _check_the_published_risk_table(http, url, project)
        rolled = _registry_cli(project, "rollback", "--reason", "http test", "--actor", "tester")
        assert rolled.returncode == 0, rolled.stderr
        previous = json.loads(_registry_cli(project, "status", "--json").stdout)["aliases"]["champion"]
        served += _served_until(http, url, previous)
        time.sleep(1.5)  # counters are exported every serve.metrics_interval_s
        metrics = http.get(f"{url}/metrics", timeout=10).text
        for name in (
            "fraud_detection_requests_total",
            "fraud_detection_http_request_duration_seconds_bucket",
            "fraud_detection_shadow_disagreements_total",
            "fraud_detection_prediction_log_dropped_total",
        ):
            assert name in metrics, name  # fmt: skip
    logged = [json.loads(line) for path in log_folder.glob("*.jsonl") for line in path.read_text().splitlines()]
    roles = [r["role"] for r in logged]
    assert roles.count("served") == served and roles.count("shadow") == served, "all flushed on a clean stop"
    served_versions = {r["model_version"] for r in logged if r["role"] == "served"}
    assert all(r["variant"] == "shadow" and r["model_version"] == str(challenger) for r in logged
               if r["role"] == "shadow"), "the shadow is the challenger, logged as such"  # fmt: skip
    assert served_versions <= {str(champion), str(challenger), str(previous)}
    expected = pl.read_parquet(project / "data/04_feature/transaction_features.parquet").filter(
        pl.col("transaction_id").is_in(list(replayed))
    )
    features = {r["transaction_id"]: r["features"] for r in logged if r["role"] == "served"}
    assert len(expected) == len(replayed) > 100
    for row in expected.iter_rows(named=True):
        got = features[row["transaction_id"]]
        bad = [n for n in FEATURES if abs(float(got[n]) - float(row[n])) > 1e-9]
        assert not bad, f"transaction {row['transaction_id']}: {bad} differ from the training set over HTTP"


def _registry(project: Path):
    from fraud_detection.registry.registry import RegistryAddress

    uri = f"sqlite:///{project / 'data/mlflow/mlflow.db'}"
    return RegistryAddress(uri, str(project / "data/mlflow/registry.lock")).open("fraud-detector")


def _materialize_before_the_last_day(project: Path) -> date:
    """The online store as it was when the last simulated day began (that day is then replayed through /predict):
    a fresh store, so that no customer keeps an intraday row from later that day."""
    days = sorted(p.name.removeprefix("date=") for p in (project / "data/02_intermediate/transactions").iterdir())
    last_day = date.fromisoformat(days[-1])
    for name in ("online.db", "online.db-wal", "online.db-shm"):
        (project / "data/05_feature_store" / name).unlink(missing_ok=True)
    run = _kedro_run(project, "--pipelines", "materialize", "--params", f"materialize.end={last_day.isoformat()}")
    assert run.returncode == 0, run.stdout + run.stderr
    return last_day


def _replay_the_last_day(http: requests.Session, url: str, project: Path, last_day: date) -> list[int]:
    """One connection (one worker), in time order, as the payment stream would arrive."""
    day = pl.read_parquet(project / f"data/02_intermediate/transactions/date={last_day.isoformat()}")
    ids = []
    for row in day.sort("tx_datetime", "transaction_id").iter_rows(named=True):
        body = {k: row[k] for k in ("transaction_id", "customer_id", "terminal_id", "tx_amount")}
        answer = http.post(f"{url}/predict", json={**body, "tx_datetime": row["tx_datetime"].isoformat()}, timeout=10)
        assert answer.status_code == 200, answer.text
        ids.append(row["transaction_id"])
    return ids


# The variant the project's own router (its src/, as the service runs it) gives each customer of a range, from its
# params.yaml `serve.ab`: a dict, or the typed model where the project's code has one (serving/params.py)
_AB_VARIANTS = """
import json, sys
import yaml
from fraud_detection.serving.routing import ABRouter
ab = yaml.safe_load(open("params.yaml"))["serve"]["ab"]
try:
    from fraud_detection.serving.params import ABParams
except ImportError:
    pass
else:
    ab = ABParams(**ab)
router = ABRouter.from_params(ab)
first, count = int(sys.argv[1]), int(sys.argv[2])
print(json.dumps({c: router.variant(c) for c in range(first, first + count)}))
"""


def _ab_variants(project: Path, customers: range) -> dict[int, str]:
    command = [sys.executable, "-c", _AB_VARIANTS, str(customers.start), str(len(customers))]
    run = subprocess.run(command, cwd=project, env=project_env(project), capture_output=True, text=True, timeout=120,
                         check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr
    return {int(customer): variant for customer, variant in json.loads(run.stdout).items()}


def _check_ab_routing(http: requests.Session, url: str, project: Path, champion: int, challenger: int) -> int:
    versions = {"champion": str(champion), "challenger": str(challenger)}
    counts = {"champion": 0, "challenger": 0}
    customers = range(10**6, 10**6 + 2000)  # new customers: unknown to the store, routed all the same
    router = _ab_variants(project, customers)
    for i, customer in enumerate(customers):
        body = {"transaction_id": 10**8 + i, "tx_datetime": "2018-05-30T12:00:00Z", "customer_id": customer,
                "terminal_id": 7, "tx_amount": 20.0}  # fmt: skip
        answer = http.post(f"{url}/predict", json=body, timeout=10).json()
        assert answer["variant"] == router[customer] and answer["model_version"] == versions[answer["variant"]]
        counts[answer["variant"]] += 1
    again = http.post(f"{url}/predict", json={**body, "transaction_id": 10**9}, timeout=10).json()
    assert again["variant"] == answer["variant"], "the same customer, the same variant"
    assert abs(counts["champion"] / len(customers) - 0.7) < 0.03, counts
    return len(customers) + 1


def _check_batches_and_admin(http: requests.Session, url: str) -> int:
    good = {"transaction_id": 1, "tx_datetime": "2018-05-30T12:00:00Z", "customer_id": 5, "terminal_id": 7,
            "tx_amount": 42.0}  # fmt: skip
    batch = [{**good, "transaction_id": i} for i in range(3)]
    answers = http.post(f"{url}/predict_batch", json={"transactions": batch}, timeout=10)
    assert answers.status_code == 200 and [a["transaction_id"] for a in answers.json()] == [0, 1, 2]
    assert http.post(f"{url}/admin/reload", json={}, timeout=10).status_code == 401
    wrong = {"authorization": "Bearer guess"}
    assert http.post(f"{url}/admin/reload", json={}, headers=wrong, timeout=10).status_code == 401
    reloaded = http.post(f"{url}/admin/reload", json={}, headers={"authorization": "Bearer s3cret"}, timeout=10)
    assert reloaded.status_code == 200 and "champion" in reloaded.json(), reloaded.text
    return len(batch)


def _check_the_published_risk_table(http: requests.Session, url: str, project: Path) -> None:
    """The batch_predict stage of `dvc repro` published the last day's cards (at the first repro; the later one,
    with the same champion, skips it); the service serves them."""
    report = json.loads((project / "reports/batch_predict.json").read_text())
    [day] = report["published"] + report["skipped"]
    predictions = pl.read_parquet(project / f"data/07_model_output/predictions/date={day}/part-0.parquet")
    customer = int(predictions.sort("fraud_probability", descending=True)["customer_id"][0])
    card = http.get(f"{url}/risk/{customer}", timeout=10)
    assert card.status_code == 200 and card.json()["batch_date"] == day, card.text
    assert card.json()["risk"] == predictions["fraud_probability"].max()
    assert http.get(f"{url}/risk/{10**12}", timeout=10).status_code == 404


def _served_until(http: requests.Session, url: str, version: int, timeout_s: float = 30) -> int:
    """Requests throughout a hot reload: none fails, and `version` serves within the reload interval."""
    body = {"transaction_id": 7, "tx_datetime": "2018-05-30T12:00:00Z", "customer_id": 5, "terminal_id": 7,
            "tx_amount": 42.0}  # fmt: skip
    deadline, served, seen = time.monotonic() + timeout_s, 0, None
    while time.monotonic() < deadline and seen != str(version):
        answer = http.post(f"{url}/predict", json=body, timeout=10)
        assert answer.status_code == 200, answer.text
        served += 1
        seen = answer.json()["model_version"] if answer.json()["variant"] == "champion" else seen
        time.sleep(0.05)
    assert seen == str(version), "the rolled-back-to champion serves within the reload interval"
    return served


@contextmanager
def _service(project: Path, env: dict | None = None):
    port = free_port()
    environment = project_env(project, BENTOML_HOME=str(project / ".bentoml"), BENTOML_DO_NOT_TRACK="True",
                              FRAUD_DETECTION_ADMIN_TOKEN="s3cret", **(env or {}))  # fmt: skip
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "bentoml"), "serve", "fraud_detection.serving.service:FraudService",
         "--port", str(port)],
        cwd=project, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, server)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def _check_bad_input_is_refused_by_name(http: requests.Session, url: str) -> int:
    good = {"transaction_id": 1, "tx_datetime": "2018-05-30T12:00:00Z", "customer_id": 5, "terminal_id": 7,
            "tx_amount": 42.0}  # fmt: skip
    cases = [({"tx_amount": -1}, "tx_amount"), ({"tx_amount": "NaN"}, "tx_amount"),
             ({"customer_id": "x"}, "customer_id"),
             ({"tx_datetime": "2018-05-30T12:00:00"}, "tx_datetime"),  # no timezone
             ({"tx_datetime": "9999-12-31T00:00:00Z"}, "tx_datetime"), ({"extra": 1}, "extra")]  # fmt: skip
    for change, field in cases:
        refused = http.post(f"{url}/predict", json={**good, **change}, timeout=10)
        assert refused.status_code == 400 and refused.json()["detail"][0]["loc"][-1] == field, (change, refused.text)
    missing = http.post(f"{url}/predict", json={k: v for k, v in good.items() if k != "tx_amount"}, timeout=10)
    assert missing.status_code == 400 and "tx_amount" in missing.text
    garbage = http.post(f"{url}/predict", data=b"{not json", timeout=10, headers={"content-type": "application/json"})
    assert garbage.status_code == 400
    huge = http.post(f"{url}/predict_batch", json={"transactions": [good] * 10_001}, timeout=30)
    assert huge.status_code == 400 and "at most 10000" in huge.text
    oversized = http.post(f"{url}/predict", data=b" " * 5_000_000, timeout=30,
                          headers={"content-type": "application/json"})  # fmt: skip
    assert oversized.status_code == 413
    assert http.post(f"{url}/predict", json=good, timeout=10).status_code == 200, "it keeps serving"
    return 1


@pytest.mark.usefixtures("reproduced")
def test_the_service_degrades_when_its_redis_online_store_is_stopped_and_recovers(
    project: Path, restored: Callable[..., None]
) -> None:
    """The online store really stopped: a private Redis server, killed while the service runs. Answers stay 200
    and say `degraded`, readiness fails; once Redis is back (empty, as Redis keeps nothing here) it is ready again."""
    restored("conf/redis_ci", "data/05_feature_store", "data/08_serving")  # its Kedro environment, store and log
    port = free_port()
    redis_server = _start_redis(port)
    conf = project / "conf" / "redis_ci"
    conf.mkdir(exist_ok=True)
    (conf / "catalog.yml").write_text(yaml.safe_dump({"feature_store": {
        "type": "fraud_detection.feature_store.dataset.FeatureStoreDataset",
        "registry": "data/05_feature_store/redis_ci/registry.db",
        "online_store": {"type": "redis", "connection_string": f"127.0.0.1:{port},db=0"},
        "offline_store": {"type": "duckdb"}}}))  # fmt: skip
    try:
        run = _kedro_run(project, "--env", "redis_ci", "--pipelines", "materialize")
        assert run.returncode == 0, run.stdout + run.stderr
        body = {"transaction_id": 1, "tx_datetime": "2018-05-30T12:00:00Z", "customer_id": 5, "terminal_id": 7,
                "tx_amount": 42.0}  # fmt: skip
        with _service(project, {"FRAUD_DETECTION_ENV": "redis_ci"}) as url, requests.Session() as http:
            healthy = http.post(f"{url}/predict", json=body, timeout=10).json()
            assert not healthy["degraded"], healthy
            redis_server.kill()
            redis_server.wait(timeout=10)
            down = http.post(f"{url}/predict", json=body, timeout=10)
            assert down.status_code == 200, down.text
            assert down.json()["degraded"] and down.json()["reasons"][0].startswith("online store unavailable")
            assert http.get(f"{url}/readyz", timeout=10).status_code != 200
            redis_server = _start_redis(port)
            deadline = time.monotonic() + 30
            while http.get(f"{url}/readyz", timeout=10).status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.5)
            back = http.post(f"{url}/predict", json=body, timeout=10).json()
            assert not back["reasons"][0].startswith("online store unavailable"), back
    finally:
        redis_server.kill()


def _start_redis(port: int) -> subprocess.Popen:
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return server
        time.sleep(0.1)
    server.kill()
    pytest.fail(f"redis-server did not listen on {port}")


@pytest.mark.usefixtures("reproduced")
def test_failed_ingest_keeps_previous_outputs_and_lock(project: Path, restored: Callable[..., None]) -> None:
    restored("params.yaml", "bad.csv")  # the good source again afterwards: dvc status up to date
    before = _snapshot(project)
    raw, _ = messy_source()
    raw.write_csv(project / "bad.csv")
    set_params(project, ingest={"source": str(project / "bad.csv"), "column_map": COLUMN_MAP})
    run = _dvc(project, "repro", "ingest")
    assert run.returncode != 0
    message = " ".join((run.stdout + run.stderr).split())  # undo the terminal's line wrapping
    assert "failed validation, above ingest.max_quarantine_fraction = 5.00%" in message
    assert _snapshot(project) == before


@pytest.mark.usefixtures("reproduced")
def test_after_a_traffic_run_repro_runs_what_the_new_days_require_and_the_live_store_is_no_output(
    project: Path,
) -> None:
    """The online store is live state: the traffic run writes it (as serving does) and no stage is out of date for
    that; its new days and label events are data, so ingest, features (the labels known early) and what follows run
    again, materialization incrementally (runs last)."""
    record = json.loads((project / "data/05_feature_store/materialization.json").read_text())
    traffic = [sys.executable, "-m", "fraud_detection.cli", "traffic", "run", "--days", "1", "--in-process"]
    run = subprocess.run(traffic, check=False, cwd=project, env=project_env(project), capture_output=True, text=True,
                         timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    status = _dvc(project, "status", "--json")
    changed = set(json.loads(status.stdout))
    assert changed == {"ingest", "features", "feedback"}, status.stdout  # not materialize: the store is no output
    run = _dvc(project, "repro")
    assert run.returncode == 0, run.stdout + run.stderr
    ran = set(re.findall(r"Running stage '([a-z_]+)'", run.stdout))
    assert "simulate" not in ran and {"ingest", "features", "materialize", "training_set", "feedback",
                                      "experiment"} <= ran  # fmt: skip
    again = json.loads((project / "data/05_feature_store/materialization.json").read_text())
    assert again["start"] == record["end"] and again["end"] > record["end"], "incremental: only the new day"
    assert again["rows"]["customer_daily"] > 0
    assert _dvc(project, "status").stdout.strip().endswith("up to date.")
    summary = json.loads((project / "reports/feedback.json").read_text())
    assert summary["predictions"] > 0 and summary["labelled_by_source"]["investigation"] > 0
