"""The feature store in the catalog: Feast's config from the catalog entry; loading opens the store, saving a
`Materialization` registers the definitions and loads the online store (the `materialize` stage).

Feast is imported lazily: `import feast` takes seconds and sets up Prometheus multiprocess state.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kedro.io import AbstractDataset

from fraud_detection.datasets.atomic import atomic_file
from fraud_detection.feature_store import quiet_feast
from fraud_detection.feature_store.feast_adapter import drop_stale_features, prepare_sqlite
from fraud_detection.feature_store.online import DAILY_VIEWS
from fraud_detection.feature_store.repo import record_infra, write_feature_repo

if TYPE_CHECKING:
    from feast import FeatureStore

log = logging.getLogger(__name__)
PROJECT = "fraud_detection"
ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Materialization:
    """What the `materialize` stage asks of the store: definitions applied, values loaded up to `end`."""

    end: datetime


def repo_config(registry: str, online_store: dict, offline_store: dict, repo_path: str = ".", project: str = PROJECT):
    """A Feast RepoConfig; relative paths are taken from `repo_path` (the project root)."""
    from feast import RepoConfig

    root = Path(repo_path).resolve()
    online = dict(online_store)
    if online.get("type") == "sqlite":
        online["path"] = str(root / online["path"])
    return RepoConfig(
        project=project,
        provider="local",
        registry=str(root / registry),
        online_store=online,
        offline_store=offline_store,
        repo_path=str(root),
        entity_key_serialization_version=3,
    )


def open_store(config: Any) -> FeatureStore:
    """The store of `config`; its registry's folder is refreshed as a feature repo for Feast's own CLI."""
    from feast import FeatureStore

    Path(config.registry.path).parent.mkdir(parents=True, exist_ok=True)
    write_feature_repo(config)
    return FeatureStore(config=config)


def apply_and_materialize(store: FeatureStore, end: datetime) -> tuple[datetime, list[str]]:
    """Register every definition, then load the latest values up to `end` into the online store.

    Incremental: only what is newer than the last materialization is loaded. When `end` is not newer (the same
    data recomputed with other parameters), the last day up to `end` is loaded again, so the online store always
    holds the values of the current offline tables. The first time, the last day up to `end` is loaded.
    """
    from fraud_detection.feature_store.definitions import FEAST_OBJECTS
    from fraud_detection.runtime.progress import feast_progress, show_progress

    with quiet_feast():
        store.apply(FEAST_OBJECTS)
    record_infra(store)
    views = [v for v in store.list_feature_views() if v.online]
    drop_stale_features(store, views)
    prepare_sqlite(store, DAILY_VIEWS)  # before the writes: the change counters see them
    ends = [interval[1] for v in views for interval in v.materialization_intervals]
    latest = max(ends) if ends else None
    # Every entity has a row for each day (the views live one day), so the last day holds every latest value.
    start = latest if latest and latest < end else end - ONE_DAY
    log.info("materializing %s .. %s", start.isoformat(), end.isoformat())
    with feast_progress(show_progress()), quiet_feast():  # Feast's bar: on a terminal only
        store.materialize(start_date=start, end_date=end)
    return start, sorted(v.name for v in views)


class FeatureStoreDataset(AbstractDataset[Materialization, "FeatureStore"]):
    """The feature store in the catalog. Loading opens it; saving a Materialization applies the definitions
    and materializes (the `materialize` stage), then writes `record`: what materialization did (the views, the
    window, the rows loaded per view), which DVC tracks in place of the store. The store itself is live state:
    serving, the label consumer and `traffic run` write to it, so it is no stage's output."""

    def __init__(
        self,
        registry: str,
        online_store: dict,
        offline_store: dict,
        project: str = PROJECT,
        record: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._args = {"registry": registry, "online_store": online_store, "offline_store": offline_store}
        self._project, self._record = project, record
        self.metadata = metadata

    def load(self) -> FeatureStore:
        return open_store(repo_config(**self._args, project=self._project))

    def save(self, data: Materialization) -> None:
        store = self.load()
        start, views = apply_and_materialize(store, data.end)
        if self._record is not None:
            record = {"views": views, "start": start.isoformat(), "end": data.end.isoformat(),
                      "rows": materialized_rows(store, views, start, data.end)}  # fmt: skip
            with atomic_file(Path(self._record)) as temporary:
                temporary.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")

    def _describe(self) -> dict[str, Any]:
        return {**self._args, "project": self._project, "record": self._record}


def materialized_rows(store: FeatureStore, views: list[str], start: datetime, end: datetime) -> dict[str, int]:
    """Rows of each view's offline source with an event time in [start, end): what materialization loaded."""
    import polars as pl

    rows = {}
    for name in views:
        source = Path(store.config.repo_path) / store.get_feature_view(name).batch_source.path
        frame = pl.scan_parquet(source).filter(pl.col("event_timestamp").is_between(start, end, closed="left"))
        rows[name] = frame.select(pl.len()).collect().item()
    return rows
