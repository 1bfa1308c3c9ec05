"""params.yaml as one typed model: a field per top-level key, each the model of the room that owns it. Checked once,
when Kedro loads the project's context (and by every other entry point that reads params.yaml), before anything runs:
a wrong type, a value out of range or an unknown key fails with the dotted key, the value and what was expected.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Mapping
from datetime import date, datetime
from types import SimpleNamespace
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import click
from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel, Field, ValidationError

from fraud_detection.batch.params import BatchPredictParams
from fraud_detection.evaluation.params import EvaluateParams
from fraud_detection.experiments.params import ExperimentParams, RolloutParams
from fraud_detection.feature_store.params import MaterializeParams, TrainingSetParams
from fraud_detection.features.params import FeaturesParams
from fraud_detection.feedback.params import FeedbackParams
from fraud_detection.ingestion.params import IngestParams
from fraud_detection.models.params import TrainParams
from fraud_detection.monitoring.params import MonitorParams
from fraud_detection.online.params import OnlineParams
from fraud_detection.registry.params import RegisterParams
from fraud_detection.reporting.params import NotebooksParams
from fraud_detection.runtime.param_model import ParamModel
from fraud_detection.runtime.spark import SparkParams
from fraud_detection.schedule.params import ScheduleParams
from fraud_detection.serving.params import ServeParams
from fraud_detection.simulation.params import SimulateParams

SOURCE = "params.yaml"
LONGEST_VALUE = 80  # characters of a value shown in an error


with warnings.catch_warnings():  # `register` is also ABCMeta.register: the field wins on instances, as wanted
    warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)

    class Params(ParamModel):
        """Every tunable value of the project: one top-level key per stage (and `serve`, `rollout`, `online`,
        `notebooks`, `spark`, `schedule`)."""

        simulate: SimulateParams
        ingest: IngestParams
        features: FeaturesParams
        materialize: MaterializeParams
        training_set: TrainingSetParams
        train: TrainParams
        evaluate: EvaluateParams
        register: RegisterParams = Field()  # required: without Field(), pydantic takes ABCMeta.register as default
        serve: ServeParams
        batch_predict: BatchPredictParams
        monitor: MonitorParams
        feedback: FeedbackParams
        experiment: ExperimentParams
        rollout: RolloutParams
        online: OnlineParams
        notebooks: NotebooksParams
        spark: SparkParams
        schedule: ScheduleParams


class ParamsError(click.ClickException, ValueError):
    """params.yaml breaks its schema. A ClickException: `kedro run` prints the message, not a traceback."""

    exit_code = 2


def checked_params(raw: Mapping[str, Any]) -> Params:
    """`raw` (params.yaml as Kedro reads it, `--params` overrides included) as the typed model; raises ParamsError
    with one line per problem."""
    try:
        return Params.model_validate(dict(raw))
    except ValidationError as error:
        problems = dict.fromkeys(problem(e) for e in error.errors(include_url=False))  # a union's members: one line
        raise ParamsError("\n".join(problems)) from None


def problem(error: Mapping[str, Any]) -> str:
    """One pydantic error as `params.yaml <key>=<value>: expected <what>`."""
    place = _Place.of(error["loc"])
    kind, value = error["type"], _short(error["input"])
    if kind == "extra_forbidden":
        return f"{SOURCE} {place.key}={value}: unknown key; expected one of {place.siblings}"
    if kind == "missing":
        return f"{SOURCE} {place.key} is missing; expected {_describe(place.annotation)}"
    if kind == "union_tag_invalid":
        tags = error["ctx"]["expected_tags"]
        return f"{SOURCE} {place.key}.kind={_short(error['ctx']['tag'])}: expected one of {tags}"
    if kind == "value_error":  # a model's own check: its message says what it expected
        what = str(error["ctx"]["error"]) if "ctx" in error else error["msg"]
        return f"{SOURCE} {place.key or '(top level)'}: expected {what}"
    return f"{SOURCE} {place.key}={value}: expected {_describe(place.annotation)}"


class _Place:
    """Where an error is: the dotted key (`simulate.drift[0].days`), the declared type there (constraints kept) and
    the keys its mapping declares. A discriminated union's tag is skipped; a plain union's member ends the walk (the
    error is about the field, whichever member pydantic tried)."""

    def __init__(self, key: str, annotation: Any, siblings: list[str]) -> None:
        self.key, self.annotation, self.siblings = key, annotation, siblings

    @classmethod
    def of(cls, location: tuple) -> _Place:
        parts: list[str] = []
        annotation: Any = Params
        siblings: list[str] = []
        for part in location:
            inner = _strip(annotation)
            if isinstance(part, int) and get_origin(inner) is list:
                parts[-1] += f"[{part}]"
                annotation = get_args(inner)[0]
            elif _is_model(inner):
                siblings = list(inner.model_fields)
                parts.append(str(part))
                field = inner.model_fields.get(str(part))
                annotation = _declared(field) if field else Any
            elif get_origin(inner) is dict:
                parts.append(str(part))
                annotation = get_args(inner)[1]
            elif (member := _tagged(inner, part)) is not None:
                annotation = member
            else:
                break
        return cls(".".join(parts), annotation, siblings)


def _declared(field: Any) -> Any:
    """A field's annotation with its constraints (pydantic keeps them apart, in `metadata`)."""
    return Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _tagged(union: Any, tag: Any) -> Any:
    """The member of a discriminated union of models whose `kind` is `tag` (None for anything else)."""
    for member in _members(union):
        kind = getattr(_strip(member), "model_fields", {}).get("kind")
        if kind is not None and tag in get_args(kind.annotation):
            return _strip(member)
    return None


def _strip(annotation: Any) -> Any:
    return get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation


def _members(annotation: Any) -> tuple:
    inner = _strip(annotation)
    if get_origin(inner) in (Union, types.UnionType):
        return get_args(inner)
    return (annotation,)


def _describe(annotation: Any, metadata: list | tuple = ()) -> str:  # noqa: PLR0911, PLR0912 (one return per kind of type)
    """What a value of `annotation` (with its constraints) looks like, in words."""
    if get_origin(annotation) is Annotated:
        inner, *extra = get_args(annotation)
        constraints = [c for item in extra for c in getattr(item, "metadata", [item])]
        return _describe(inner, [*metadata, *constraints])
    members = _members(annotation)
    tags = [tag for member in members for tag in get_args(getattr(_strip(member), "model_fields", {}).get("kind",
            _NO_KIND).annotation)]  # fmt: skip
    if len(members) > 1 and len(tags) == len(members):  # a discriminated union of models
        return f"a mapping whose kind is one of {tags}"
    if len(members) > 1:
        return " or ".join(_describe(m, metadata) for m in members)
    origin = get_origin(annotation)
    if annotation is type(None):
        return "null"
    if origin is Literal:
        return " or ".join(repr(v) for v in get_args(annotation))
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "an integer" + _bounds(metadata)
    if annotation is float:
        return "a number" + _bounds(metadata)
    if annotation is str:
        return "a string"
    if annotation is datetime:
        return "a date or date-time (ISO 8601, e.g. 2018-04-01 or 2018-04-01T12:00:00Z)"
    if annotation is date:
        return "a date (YYYY-MM-DD)"
    if origin in (list, dict):
        *key, item = get_args(annotation)
        what = f"{_plural(_describe(key[0]))} to {_plural(_describe(item))}" if key else _plural(_describe(item))
        return _sized("a list" if origin is list else "a mapping", metadata, what)
    if annotation is Any:
        return "a value"
    if _is_model(annotation):
        return f"a mapping with the keys {list(annotation.model_fields)}"
    return str(annotation)


_NO_KIND = SimpleNamespace(annotation=None)


def _bounds(metadata: list | tuple) -> str:
    low = next((m for m in metadata if isinstance(m, Ge | Gt)), None)
    high = next((m for m in metadata if isinstance(m, Le | Lt)), None)
    if low is not None and high is not None:
        left = f"[{_number(low.ge)}" if isinstance(low, Ge) else f"({_number(low.gt)}"
        right = f"{_number(high.le)}]" if isinstance(high, Le) else f"{_number(high.lt)})"
        return f" in {left}, {right}"
    if low is not None:
        return f" >= {_number(low.ge)}" if isinstance(low, Ge) else f" > {_number(low.gt)}"
    if high is not None:
        return f" <= {_number(high.le)}" if isinstance(high, Le) else f" < {_number(high.lt)}"
    return ""


def _number(bound: float) -> str:
    """A bound as written in params.yaml: 0, not 0.0 (a library imported first may have made 0 a float)."""
    return str(int(bound)) if float(bound).is_integer() and abs(bound) < 2**53 else str(bound)


def _sized(noun: str, metadata: list | tuple, items: str) -> str:
    """`a list of numbers` with its length constraints: `a list of 2 numbers`, `a non-empty list of numbers`."""
    low = next((m.min_length for m in metadata if isinstance(m, MinLen)), None)
    high = next((m.max_length for m in metadata if isinstance(m, MaxLen)), None)
    if low is not None and low == high:
        return f"{noun} of {low} {items}"
    if low == 1:
        return f"{noun.replace('a ', 'a non-empty ', 1)} of {items}"
    return f"{noun} of at least {low} {items}" if low else f"{noun} of {items}"


def _plural(description: str) -> str:
    for article in ("an ", "a "):
        if description.startswith(article):
            rest = description[len(article) :]
            for singular in ("integer", "number", "string", "date", "mapping", "list"):
                if rest.startswith(singular):
                    return singular + "s" + rest[len(singular) :]
            return rest
    return description


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= LONGEST_VALUE else text[: LONGEST_VALUE - 3] + "..."
