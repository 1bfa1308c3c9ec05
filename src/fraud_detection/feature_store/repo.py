"""Feast's own CLI on the project's store: the folder of the registry is also a Feast feature repo, so
`feast -c <that folder> feature-views list | plan | ui` work from the project root.

Written whenever the store is opened (`dataset.open_store`), from the RepoConfig the project opens it with, so
`repo_config` stays the one source of the settings:
- `feature_store.yaml`: that config, with paths relative to the folder (Feast resolves them against `-c`);
- `feature_repo.py`: imports the objects the `materialize` stage applies (`definitions.FEAST_OBJECTS`);
- `.feastignore`: the folder's subfolders hold no definitions (the production store's repo lives in one);
- a link per source folder (`data/04_feature`): Feast resolves the offline sources' relative paths against the
  repo folder, the project against its root.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from fraud_detection.datasets.atomic import atomic_file

if TYPE_CHECKING:
    from feast import FeatureStore

log = logging.getLogger(__name__)
FEATURE_STORE_YAML = "feature_store.yaml"
FEATURE_REPO_PY = "feature_repo.py"
FEATURE_REPO_SOURCE = '''\
"""The project's Feast definitions, for Feast's CLI (written by fraud_detection.feature_store.repo)."""

from fraud_detection.feature_store.definitions import FEAST_OBJECTS

# Feast collects the objects it finds as module attributes: exactly those the materialize stage applies.
globals().update({f"{type(obj).__name__}_{obj.name}": obj for obj in FEAST_OBJECTS})
'''
FEASTIGNORE = "# subfolders are other stores' repos or links to data, not definitions\n*/\n"


def repo_folder(config: Any) -> Path:
    """The feature repo of a store: the folder of its registry."""
    return Path(config.registry.path).parent


def store_settings(config: Any, folder: Path) -> dict[str, Any]:
    """`config` as feature_store.yaml holds it: file paths relative to `folder`."""
    settings = config.model_dump(mode="json", by_alias=True, exclude={"repo_path"}, exclude_unset=True)
    settings["registry"] = os.path.relpath(config.registry.path, folder)
    online = settings["online_store"]
    if online.get("type") == "sqlite":
        online["path"] = os.path.relpath(online["path"], folder)
    return settings


def write_feature_repo(config: Any) -> Path:
    """Write (or refresh) the feature repo beside the store's registry; return its folder."""
    from fraud_detection.feature_store.definitions import SOURCE_PATHS

    folder = repo_folder(config)
    settings = yaml.safe_dump(store_settings(config, folder), sort_keys=False)
    for name, text in (
        (FEATURE_STORE_YAML, settings),
        (FEATURE_REPO_PY, FEATURE_REPO_SOURCE),
        (".feastignore", FEASTIGNORE),
    ):
        _write_if_changed(folder / name, text)
    for source_folder in sorted({Path(path).parent for path in SOURCE_PATHS.values()}):
        _link(folder / source_folder, Path(config.repo_path) / source_folder)
    return folder


def record_infra(store: FeatureStore) -> None:
    """Record the online store's tables in the registry, as `feast apply` does and `FeatureStore.apply` does not,
    so that `feast plan` knows the tables the materialize stage made instead of planning to create them."""
    from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto

    desired = RegistryProto()
    desired.feature_views.extend(view.to_proto() for view in store.list_feature_views())
    store.registry.update_infra(store.provider.plan_infra(store.config, desired), store.project, commit=True)


def _write_if_changed(path: Path, text: str) -> None:
    if path.is_file() and path.read_text() == text:
        return
    with atomic_file(path) as temporary:
        temporary.write_text(text)


def _link(link: Path, target: Path) -> None:
    """`link` -> `target` (relative), replaced in one rename; a real folder already at `link` is left alone."""
    if link.resolve() == target.resolve():
        return  # the repo is the project root, or the link is already right
    if link.exists() and not link.is_symlink():
        log.warning("%s is not a link to %s: Feast's CLI reads the sources there", link, target)
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    temporary = link.with_name(f".{link.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        temporary.symlink_to(os.path.relpath(target, link.parent), target_is_directory=True)
        os.replace(temporary, link)
    except OSError as error:  # a file system without links: the CLI still lists, plans and shows the store
        temporary.unlink(missing_ok=True)
        log.warning("cannot link %s to %s (%s): Feast's CLI will not find the offline sources", link, target, error)
