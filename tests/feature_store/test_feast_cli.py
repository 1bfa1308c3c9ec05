"""Feast's own CLI on the project's store: the registry's folder is a feature repo written from the settings the
project opens the store with, so `feast -c <folder>` lists the project's objects and plans no change against what
the materialize stage applied."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from feast.feature_view import DUMMY_ENTITY_NAME
from feast.repo_config import load_repo_config
from feast.repo_operations import parse_repo

from fraud_detection.feature_store.dataset import FeatureStoreDataset, Materialization, repo_config
from fraud_detection.feature_store.definitions import FEAST_OBJECTS, SOURCE_PATHS
from fraud_detection.feature_store.repo import FEATURE_REPO_PY, FEATURE_STORE_YAML, write_feature_repo
from fraud_detection.runtime.telemetry import TELEMETRY_OFF
from tests.feature_store.conftest import REDIS

END = datetime(2018, 5, 10, tzinfo=UTC)
VIEWS = ["customer_daily", "customer_intraday", "terminal_daily", "transaction_features"]


def _repo(root: Path, online: dict, name: str, folder: str | None = None):
    """A store named `name` whose registry lies in data/<folder>; its feature repo written."""
    config = repo_config(f"data/{folder or name}/registry.db", online, {"type": "duckdb"}, str(root), name)
    return config, write_feature_repo(config)


@pytest.mark.parametrize("online", ["sqlite", "redis"])
def test_feature_store_yaml_is_the_config_the_project_opens(tmp_path: Path, online: str) -> None:
    """Read back by Feast from the repo folder (paths against `-c`), the settings are the project's own."""
    name = f"cli_{online}"
    store = {"type": "sqlite", "path": f"data/{name}/online.db"} if online == "sqlite" else REDIS
    config, folder = _repo(tmp_path, store, name)
    assert folder == tmp_path / "data" / name
    read = load_repo_config(folder, folder / FEATURE_STORE_YAML)
    assert (read.project, read.provider, read.offline_store.type) == (name, "local", "duckdb")
    assert (folder / read.registry.path).resolve() == Path(config.registry.path)
    assert read.online_store.type == online
    if online == "sqlite":
        assert (folder / read.online_store.path).resolve() == tmp_path / "data" / name / "online.db"
    else:
        assert read.online_store.connection_string == REDIS["connection_string"]
    assert read.entity_key_serialization_version == config.entity_key_serialization_version


def test_the_repo_holds_the_objects_the_stage_applies_and_reaches_the_sources(tmp_path: Path, monkeypatch) -> None:
    _, folder = _repo(tmp_path, {"type": "sqlite", "path": "data/cli_objects/online.db"}, "cli_objects")
    _repo(tmp_path, REDIS, "cli_production", "cli_objects/production")  # another store's repo inside: not read twice
    monkeypatch.chdir(folder)  # as Feast's CLI reads a repo: from the folder, importing its files by name
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, FEATURE_REPO_PY.removesuffix(".py"), raising=False)
    contents = parse_repo(folder)
    found = contents.entities + contents.data_sources + contents.feature_views
    found += contents.on_demand_feature_views + contents.feature_services
    applied = {o.name for o in FEAST_OBJECTS} | {f"{s}_file" for s in SOURCE_PATHS}  # with the push sources' batch
    assert {o.name for o in found} - {DUMMY_ENTITY_NAME} == applied  # Feast adds its dummy entity itself
    for path in SOURCE_PATHS.values():  # Feast resolves the sources' relative paths against the repo folder
        assert (folder / path).parent.resolve() == (tmp_path / path).parent


def _feast(root: Path, *args: str) -> str:
    """`feast -c <args>` as a user runs it from the project root; its output, which must say it succeeded."""
    feast = Path(sys.executable).with_name("feast")
    env = {**os.environ, **TELEMETRY_OFF}
    done = subprocess.run(
        [str(feast), *args], check=False, cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def _changes(plan: str) -> list[str]:
    """What `feast plan` would change, less Feast's own bookkeeping: the nested sources' created/updated times.

    Feast reports a materialized view as updated (its materialization intervals are not in the repo), printing
    each differing property as `old -> new`; a property whose two sides differ only in timestamps is no change."""
    changes = []
    for block in re.split(r"\n(?=[A-Z])", plan):  # a capital starts a message; proto text is lower case
        if not block.startswith(("Created", "Updated", "Deleted")):
            continue
        properties = re.split(r"\n\t(?=\w+: )", block)
        for prop in properties[1:]:
            old, new = prop.split(": ", 1)[1].split(" -> ", 1)
            if _without_times(old) != _without_times(new):
                changes.append(prop)
        if len(properties) == 1:
            changes.append(block.splitlines()[0])
    return changes


def _without_times(proto_text: str) -> str:
    return re.sub(r"\s*(seconds|nanos): \d+", "", proto_text).strip()


@pytest.fixture(scope="module")
def materialized_repo(feature_root: Path) -> str:
    """A store applied and materialized by the project, as the materialize stage does; its repo folder."""
    name = f"cli_{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(feature_root)
        online = {"type": "sqlite", "path": f"data/{name}/online.db"}
        FeatureStoreDataset(f"data/{name}/registry.db", online, {"type": "duckdb"}).save(Materialization(END))
    return f"data/{name}"


@pytest.mark.slow
def test_feast_cli_lists_the_views_and_plans_no_change(feature_root: Path, materialized_repo: str) -> None:
    listed = _feast(feature_root, "-c", materialized_repo, "feature-views", "list")
    assert [line.split()[0] for line in listed.splitlines()[1:] if line.strip()] == VIEWS
    plan = _feast(feature_root, "-c", materialized_repo, "plan")
    assert "Could not validate FileSource" not in plan  # the sources are found from the repo folder
    assert "No changes to infrastructure" in plan
    assert _changes(plan) == []


@pytest.mark.slow
def test_feast_ui_serves_the_project(feature_root: Path, materialized_repo: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [str(Path(sys.executable).with_name("feast")), "-c", materialized_repo, "ui", "--host", "127.0.0.1"]
    env = {**os.environ, **TELEMETRY_OFF}
    ui = subprocess.Popen([*command, "--port", str(port)], cwd=feature_root, env=env, stderr=subprocess.PIPE)
    try:
        views = _get_when_up(ui, f"http://127.0.0.1:{port}/api/v1/feature_views?project=fraud_detection")
        assert sorted(view["spec"]["name"] for view in views["featureViews"]) == VIEWS
    finally:
        ui.terminate()
        ui.communicate(timeout=30)


def _get_when_up(server: subprocess.Popen, url: str, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert server.poll() is None, server.communicate()[1].decode()[-2000:]
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.load(response)
        except OSError:
            time.sleep(1)
    raise AssertionError(f"{url} did not answer within {timeout_s} s")
