"""The registered model (`fraud-detector`) in MLflow: its versions, the aliases that decide what serves
(`champion`, `challenger`), and the history of every alias move.

The history is a log kept as tags of the registered model (`alias_history.000001`, ...), one JSON event each: time,
actor, action, alias, version, previous version, reason. Every move runs under the registry lock (`locks.py`) and
writes its event before it moves the alias, then marks the event applied. So two promotions at the same moment are
serialised, and a crash between the two writes is repaired by the next operation (it finishes the move the log
promised). An alias moved behind our back (say in MLflow's UI) is adopted and logged as an `external` event.

Rollback replays the log: every promotion pushes a champion, every rollback pops one; the champion goes back to the
one below the top.

The experiment that decides what serves (a rollout's shares and shadow, `experiments/rollout.py`) is kept here too,
as the tag `experiment` (JSON), and changed the same way: an event of the log (alias `experiment`, the new state in
its `experiment` field) written first, under the lock, then the tag, then the mark.

Inside a DVC experiment (`dvc exp run`, which sets `DVC_EXP_NAME`) the registry is opened for that experiment: it
registers versions but refuses every alias move, experiment change and rollback, and repairs nothing, so an
experiment never changes what serves nor writes a history event.
"""

from __future__ import annotations

import getpass
import json
import socket
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraud_detection.registry.gate import CHALLENGER, CHAMPION, ONLINE
from fraud_detection.registry.locks import registry_lock
from fraud_detection.registry.versions import register_candidate

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mlflow.entities.model_registry import ModelVersion

ALIASES = (CHAMPION, CHALLENGER, ONLINE)  # online: the online learner's published model (online/runner.py)
EXPERIMENT = "experiment"  # the log's `alias` of an experiment's events, and the tag holding its state
RUNNING = "running"  # an experiment's status while it decides what serves
HISTORY_PREFIX = "alias_history."
PROMOTE, FORCED, GATE, ROLLBACK, REMOVE, EXTERNAL = "promote", "force-promote", "gate", "rollback", "remove", "external"
ROLLOUT = "rollout"  # a move made by a rollout: the candidate made challenger at its start, champion at its end
PUSHES = {PROMOTE, FORCED, GATE, EXTERNAL, ROLLOUT}  # champion moves that make a new top of the champion stack


class RegistryError(ValueError):
    """Bad input (an unknown version, another model's version, nothing to roll back to): nothing was changed."""


class RegistryUnreachable(RuntimeError):
    """The tracking server or store cannot be reached: nothing was changed."""


@dataclass(frozen=True)
class AliasEvent:
    seq: int
    time: str  # ISO 8601, UTC
    actor: str
    action: str  # gate | promote | force-promote | rollback | remove | external | rollout | rollout-*
    alias: str  # champion | challenger | experiment
    version: int | None  # None: the alias was removed (an experiment's event: its candidate)
    previous: int | None
    reason: str
    applied: bool = False
    experiment: dict[str, Any] | None = None  # an experiment's event: its state from now on

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> AliasEvent:
        return cls(**json.loads(text))


def default_actor() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


@dataclass(frozen=True)
class RegistryAddress:
    """Where the registry lives (a catalog entry): MLflow's tracking URI and the write lock's address."""

    tracking_uri: str
    lock: str
    dvc_experiment: str | None = None  # the DVC experiment this run belongs to (DVC_EXP_NAME), if any

    def open(self, name: str, create: bool = False) -> ModelRegistry:
        """The registered model `name`; `create` lets a new sqlite store be made (the register stage does,
        operations on a registry that does not exist yet do not)."""
        return ModelRegistry(_checked_uri(self.tracking_uri, create), name, self.lock, self.dvc_experiment)


class ModelRegistry:
    def __init__(self, tracking_uri: str, name: str, lock: str, dvc_experiment: str | None = None) -> None:
        import mlflow

        mlflow.set_tracking_uri(tracking_uri)  # pyfunc loads (models:/...) resolve through the same store
        mlflow.set_registry_uri(tracking_uri)
        # MLflow's SQL store, when first imported, maps a relation with SQLAlchemy's deprecated `noload`. Python hides
        # the warning by default, but importing Feast turns every DeprecationWarning on ("once"), so each command that
        # opens the registry after Feast printed it.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The ``noload`` loader strategy", category=DeprecationWarning)
            self.client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self.tracking_uri, self.name, self.lock = tracking_uri, name, lock
        self.dvc_experiment = dvc_experiment  # set: register only, move nothing (see the module's docstring)

    # -- reading
    def exists(self) -> bool:
        return bool(self.client.search_registered_models(filter_string=f"name = '{self.name}'"))

    def versions(self) -> list[ModelVersion]:
        found = self.client.search_model_versions(filter_string=f"name = '{self.name}'")
        return sorted(found, key=lambda v: int(v.version))

    def version(self, ref: str | int) -> ModelVersion:
        """A version by number (`3`), by name and number (`fraud-detector/3`, `models:/fraud-detector/3`)."""
        from mlflow.exceptions import MlflowException

        number = self._parse(ref)
        self._require_model()
        try:
            return self.client.get_model_version(self.name, str(number))
        except MlflowException as error:
            known = [int(v.version) for v in self.versions()]
            raise RegistryError(
                f"model {self.name!r} has no version {number}; expected one of its versions {known}"
            ) from error

    def alias_version(self, alias: str) -> int | None:
        return self._aliases().get(alias)

    def experiment(self) -> dict[str, Any] | None:
        """The experiment's state as its last event left it (None: there never was one)."""
        if not self.exists():
            return None
        text = self.client.get_registered_model(self.name).tags.get(EXPERIMENT)
        return json.loads(text) if text else None

    def history(self) -> list[AliasEvent]:
        tags = self.client.get_registered_model(self.name).tags if self.exists() else {}
        events = [AliasEvent.from_json(v) for k, v in tags.items() if k.startswith(HISTORY_PREFIX)]
        return sorted(events, key=lambda e: e.seq)

    def status(self) -> dict[str, Any]:
        """Aliases, and per version its aliases, creation time, gate decision and key metrics."""
        self._require_model()
        aliases = self._aliases()
        rows = []
        for v in self.versions():
            number = int(v.version)
            rows.append({
                "version": number,
                "aliases": [a for a, n in aliases.items() if n == number],
                "created": _iso(v.creation_timestamp),
                "gate": v.tags.get("gate.alias", ""),
                "gate_average_precision": _float(v.tags.get("gate.candidate.average_precision")),
                "gate_auc_roc": _float(v.tags.get("gate.candidate.auc_roc")),
                "backtest_average_precision": _float(v.tags.get("backtest.average_precision")),
                "window": f"{v.tags.get('window_start', '?')}..{v.tags.get('window_end', '?')}",
                "git_commit": v.tags.get("git_commit", "")[:12],
            })  # fmt: skip
        return {"model": self.name, "tracking_uri": self.tracking_uri, "aliases": aliases, "versions": rows}

    # -- writing
    def register(self, run: dict[str, str], tags: dict[str, str]) -> ModelVersion:
        with self.locked():
            return register_candidate(self.client, self.name, run, tags)

    def set_version_tags(self, version: int, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(self.name, str(version), key, value)

    def move(self, alias: str, ref: str | int | None, action: str, actor: str, reason: str) -> list[AliasEvent]:
        """Point `alias` at a version (None: remove it), under the lock. Returns the events written (none if the
        alias already points there)."""
        number = None if ref is None else int(self.version(ref).version)
        with self.locked():
            return self.move_locked(alias, number, action, actor, reason)

    def move_locked(self, alias: str, version: int | None, action: str, actor: str, reason: str) -> list[AliasEvent]:
        """`move`, for a caller that holds the lock (`with registry.locked(): ...`). Making a version champion
        takes the challenger alias off it."""
        if alias not in ALIASES:
            raise RegistryError(f"alias {alias!r} is not managed here; expected one of {list(ALIASES)}")
        self._refuse_inside_dvc_experiment(f"move alias {alias!r} to version {version}")
        events = self._move(alias, version, action, actor, reason)
        if alias == CHAMPION and version is not None and self.alias_version(CHALLENGER) == version:
            events += self._move(CHALLENGER, None, REMOVE, actor, f"version {version} became champion")
        return events

    def set_experiment_locked(self, state: dict[str, Any], action: str, actor: str, reason: str) -> AliasEvent:
        """The experiment's new state, for a caller that holds the lock: an event of the log, then the tag."""
        self._refuse_inside_dvc_experiment(f"change the serving experiment ({action})")
        candidate = state.get("versions", {}).get(CHALLENGER)
        previous = (self.experiment() or {}).get("versions", {}).get(CHALLENGER)
        event = AliasEvent(self._next_seq(), _now(), actor, action, EXPERIMENT, candidate, previous, reason,
                           experiment=state)  # fmt: skip
        self._write(event)
        self._apply(event)
        return self._write(AliasEvent(**{**asdict(event), "applied": True}))

    def rollback(self, actor: str, reason: str) -> AliasEvent:
        """The champion goes back to the previous champion."""
        self._require_model()
        self._refuse_inside_dvc_experiment("roll the champion back")
        with self.locked():
            stack = champion_stack(self.history())
            if len(stack) < 2:
                raise RegistryError(
                    f"model {self.name!r} has no previous champion to roll back to (champions so far: {stack}); "
                    "expected at least two promotions"
                )
            return self._move(CHAMPION, stack[-2], ROLLBACK, actor, reason)[0]

    # -- internals
    @contextmanager
    def locked(self) -> Iterator[None]:
        """The registry's write lock (not re-entrant), after repairing what an interrupted move left (outside a
        DVC experiment: the repair writes history)."""
        with registry_lock(self.lock, self.name):
            if self.exists() and self.dvc_experiment is None:
                self._reconcile()
            yield

    def _refuse_inside_dvc_experiment(self, what: str) -> None:
        if self.dvc_experiment is not None:
            raise RegistryError(
                f"refusing to {what} of {self.name!r} inside DVC experiment {self.dvc_experiment!r} "
                f"(DVC_EXP_NAME): an experiment changes nothing outside itself; expected `dvc exp apply "
                f"{self.dvc_experiment}`, then `fraud-detection registry promote VERSION` outside the experiment"
            )

    def _move(self, alias: str, version: int | None, action: str, actor: str, reason: str) -> list[AliasEvent]:
        previous = self.alias_version(alias)
        if previous == version:
            return []
        event = AliasEvent(self._next_seq(), _now(), actor, action, alias, version, previous, reason)
        self._write(event)  # the intent first ...
        self._apply(event)  # ... then the move, then the mark
        return [self._write(AliasEvent(**{**asdict(event), "applied": True}))]

    def _reconcile(self) -> None:
        """Finish a move the log promised but a crash interrupted; adopt aliases moved outside this tool."""
        last: dict[str, AliasEvent] = {}
        for event in self.history():
            last[event.alias] = event
        for event in last.values():
            if not event.applied:
                self._apply(event)
                self._write(AliasEvent(**{**asdict(event), "applied": True}))
        for alias in ALIASES:
            logged = last[alias].version if alias in last else None
            actual = self.alias_version(alias)
            if actual != logged:
                adopted = AliasEvent(self._next_seq(), _now(), "unknown", EXTERNAL if actual else REMOVE, alias,
                                     actual, logged, "alias moved outside the registry CLI; adopted", True)  # fmt: skip
                self._write(adopted)

    def _apply(self, event: AliasEvent) -> None:
        if event.alias == EXPERIMENT:
            self.client.set_registered_model_tag(self.name, EXPERIMENT, json.dumps(event.experiment))
        elif event.version is None:
            self.client.delete_registered_model_alias(self.name, event.alias)
        else:
            self.client.set_registered_model_alias(self.name, event.alias, str(event.version))

    def _write(self, event: AliasEvent) -> AliasEvent:
        self.client.set_registered_model_tag(self.name, f"{HISTORY_PREFIX}{event.seq:06d}", event.to_json())
        return event

    def _next_seq(self) -> int:
        history = self.history()
        return history[-1].seq + 1 if history else 1

    def _aliases(self) -> dict[str, int]:
        if not self.exists():
            return {}
        return {alias: int(v) for alias, v in self.client.get_registered_model(self.name).aliases.items()}

    def _require_model(self) -> None:
        if not self.exists():
            raise RegistryError(
                f"no registered model {self.name!r} at {self.tracking_uri}; expected the register stage to have run "
                "(`dvc repro`)"
            )

    def _parse(self, ref: str | int) -> int:
        text = str(ref).strip().removeprefix("models:/")
        name, _, number = text.rpartition("/")
        if name and name != self.name:
            raise RegistryError(
                f"version {ref!r} belongs to model {name!r}; this registry manages {self.name!r}: expected a version "
                f"of {self.name!r} (`3` or `{self.name}/3`)"
            )
        if not number.isdigit() or int(number) < 1:
            raise RegistryError(f"version {ref!r} is not a version number; expected a positive integer like 3")
        return int(number)


def champion_stack(history: list[AliasEvent]) -> list[int]:
    """Champions in order, as promotions push them and rollbacks pop them."""
    stack: list[int] = []
    for event in history:
        if event.alias != CHAMPION or event.version is None:
            continue
        if event.action == ROLLBACK:
            stack.pop()
            if not stack or stack[-1] != event.version:
                stack.append(event.version)
        elif event.action in PUSHES:
            stack.append(event.version)
    return stack


def _checked_uri(uri: str, create: bool) -> str:
    """The tracking URI, after checking the store is there: a sqlite file (made absolute), or a server that
    answers its health check within seconds. Raises `RegistryUnreachable` with the address otherwise."""
    prefix = "sqlite:///"
    if uri.startswith(prefix):
        path = Path(uri.removeprefix(prefix)).resolve()
        if not path.is_file():
            if not create:
                raise RegistryUnreachable(
                    f"no MLflow store at {path} (tracking URI {uri}); expected `dvc repro` to have created it, "
                    "or another tracking URI in the catalog entry `model_registry`"
                )
            path.parent.mkdir(parents=True, exist_ok=True)
        return prefix + str(path)
    if uri.startswith(("http://", "https://")):
        import requests

        try:
            requests.get(uri.rstrip("/") + "/health", timeout=5).raise_for_status()
        except requests.RequestException as error:
            raise RegistryUnreachable(
                f"cannot reach the MLflow tracking server at {uri} ({type(error).__name__}); expected a running "
                "`mlflow server` (README: production profile)"
            ) from error
    return uri


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _iso(millis: int | None) -> str:
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="seconds") if millis else ""


def _float(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None
