"""The feature store's objects, in dependency order. Feature semantics: fraud_detection.features.definitions.

Offline sources are the `features` stage's parquet outputs (paths relative to the project root, equal to the
catalog's: tests/test_wiring.py checks it). Every stored view can also be written online through a push source,
which is how the online updater keeps the store current between materializations.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, RequestSource
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Array, Float64, Int64, UnixTimestamp
from feast.value_type import ValueType

from fraud_detection.features import definitions as features

# -- entities
customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64, description="A card holder.")
terminal = Entity(
    name="terminal", join_keys=["terminal_id"], value_type=ValueType.INT64, description="A payment terminal."
)

# -- sources
SOURCE_PATHS = {
    "customer_daily": "data/04_feature/customer_daily.parquet",
    "customer_intraday": "data/04_feature/customer_intraday.parquet",
    "terminal_daily": "data/04_feature/terminal_daily.parquet",
}


def _file_source(name: str) -> FileSource:
    return FileSource(
        name=f"{name}_file",
        path=SOURCE_PATHS[name],
        timestamp_field="event_timestamp",
        description=f"The features stage's {name} table.",
    )


def _push_source(name: str) -> PushSource:
    return PushSource(
        name=f"{name}_push",
        batch_source=_file_source(name),
        description=f"Fresh {name} rows from the online updater.",
    )


customer_daily_push = _push_source("customer_daily")
customer_intraday_push = _push_source("customer_intraday")
terminal_daily_push = _push_source("terminal_daily")
PUSH_SOURCES = {
    "customer_daily": customer_daily_push.name,
    "customer_intraday": customer_intraday_push.name,
    "terminal_daily": terminal_daily_push.name,
}

transaction_request = RequestSource(
    name="transaction_request",
    schema=[Field(name="tx_datetime", dtype=UnixTimestamp), Field(name="tx_amount", dtype=Float64)],
    description="The transaction being scored.",
)

# -- feature views (one day of validity: a row is the state for its day, or as of its instant within the day)
ONE_DAY = timedelta(days=1)


def _fields(names: tuple[str, ...]) -> list[Field]:
    """Amounts are doubles, event lists lists of doubles, the rest counts."""
    return [Field(name=n, dtype=Array(Float64) if n in features.LIST_STATE else Float64 if "amount" in n else Int64)
            for n in names]  # fmt: skip


customer_daily = FeatureView(
    name="customer_daily",
    entities=[customer],
    ttl=ONE_DAY,
    schema=_fields(features.CUSTOMER_DAILY),
    source=customer_daily_push,
    online=True,
    description="Per customer and UTC day: count, amount and sum of squared amounts of the N whole days before it.",
)
customer_intraday = FeatureView(
    name="customer_intraday",
    entities=[customer],
    ttl=ONE_DAY,
    schema=[Field(name=features.INTRADAY_STATE, dtype=Array(Float64))],  # the seven CUSTOMER_INTRADAY values
    source=customer_intraday_push,
    online=True,
    description="Per customer: today's count, amount and sum of squared amounts before and at its latest transaction "
    "time, and that time (one list: features.definitions.CUSTOMER_INTRADAY).",
)
terminal_daily = FeatureView(
    name="terminal_daily",
    entities=[terminal],
    ttl=ONE_DAY,
    schema=_fields(features.TERMINAL_DAILY),
    source=terminal_daily_push,
    online=True,
    description="Per terminal and UTC day: count and frauds of the N days ending label_delay_days before it, and the "
    "transactions of the days at the windows' edges ([time of day, fraud] pairs), and the fraud run of the 30 days "
    "before day - label_delay_days.",
)


# -- on-demand view: the one definition of the features, applied to stored state + the request
@on_demand_feature_view(
    name="transaction_features",
    sources=[customer_daily, customer_intraday, terminal_daily, transaction_request],
    schema=[  # amounts, rates and ages in days are doubles, the rest counts and flags
        Field(name=n, dtype=Float64 if any(w in n for w in ("amount", "risk", "days")) else Int64)
        for n in features.ON_DEMAND_FEATURES
    ],
    mode="python",
    description="The model's features: windows over the stored state, evaluated at the request's time.",
)
def transaction_features(inputs: dict[str, Any]) -> dict[str, Any]:
    from fraud_detection.feature_store.on_demand import on_demand_features

    return on_demand_features(inputs)


# -- feature services: one per model version's feature set
fraud_model_v1 = FeatureService(
    name="fraud_model_v1",
    features=[transaction_features],
    description="Features of the fraud model, version 1 (fraud_detection.features.definitions.FEATURES).",
)

FEAST_OBJECTS = [
    customer,
    terminal,
    customer_daily_push,
    customer_intraday_push,
    terminal_daily_push,
    transaction_request,
    customer_daily,
    customer_intraday,
    terminal_daily,
    transaction_features,
    fraud_model_v1,
]
