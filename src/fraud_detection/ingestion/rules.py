"""Type coercion and row rules for transactions, written once against `Ops`.

`coerce` turns each source column into its output type (null where it cannot be parsed);
`reason_column` gives each row the first rule it breaks (null for a good row). Duplicates are the engines' job,
because they need a window over the whole table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fraud_detection.ingestion.errors import IngestionError
from fraud_detection.ingestion.ops import Expr, Ops
from fraud_detection.ingestion.schema import FIELDS, Field, Limits

MAX_SAFE_FLOAT_ID = 2**53
MAX_SCENARIO = 127  # stored as int8
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# ASCII digits only: \d would also match other scripts' digits, which the casts cannot read.
DIGITS = r"^[+-]?[0-9]{1,18}$"
UNSIGNED_DIGITS = r"^[0-9]{1,18}$"
DECIMAL = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,3})?$"
# ISO 8601: date, optional time with fraction (first 6 digits kept), optional Z or +hh[:mm] offset.
TIMESTAMP = (
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,6})[0-9]{0,3})?)?)?"
    r" *(?:([Zz])|([+-])([0-9]{2}):?([0-9]{2})?)?$"
)
ACCEPTED_KINDS = {
    "id": {"int", "float", "string"},
    "label": {"int", "float", "string", "bool"},
    "scenario": {"int", "float", "string", "bool"},
    "amount": {"int", "float", "string"},
    "timestamp": {"datetime", "date", "string"},
}
EXPECTED = {
    "id": "an integer id (integer, integral float or digit string)",
    "label": "an integer label (integer, integral float, boolean or digit string)",
    "scenario": "an integer scenario code (integer, integral float, boolean or digit string)",
    "amount": "a number (integer, float or decimal string)",
    "timestamp": "a datetime, a date or an ISO 8601 string (numbers are ambiguous: seconds or milliseconds?)",
}


@dataclass(frozen=True)
class Coerced:
    value: Expr  # the field in its output type, null where missing or unparseable
    missing: Expr  # null in the source (or a blank string)
    unparseable: Expr  # present but not of the expected form


def check_column_types(ops: Ops, present: list[str]) -> None:
    """Reject whole columns whose type cannot carry the field's meaning, naming column, type and expectation."""
    problems = [
        f"{f.name} has type {ops.dtype_name(f.name)}; expected {EXPECTED[f.kind]}"
        for f in FIELDS
        if f.name in present and ops.kind(f.name) not in ACCEPTED_KINDS[f.kind]
    ]
    if problems:
        raise IngestionError("column types cannot be coerced: " + "; ".join(problems))


def coerce(ops: Ops, field: Field) -> Coerced:
    raw, kind = ops.col(field.name), ops.kind(field.name)
    missing = ops.is_null(raw)
    if kind == "string":
        raw = ops.strip(raw)
        missing = ops.is_null(raw) | (raw == ops.lit(""))
    if field.kind == "timestamp":
        value, ok = _timestamp(ops, raw, kind)
    elif field.kind == "amount":
        ok = ops.matches(raw, DECIMAL) if kind == "string" else ops.lit(True)
        value = ops.to_float64(raw)
    else:
        value, ok = _integer(ops, raw, kind, unsigned=field.kind == "id")
    valid = ops.coalesce(ok & ~ops.is_null(value), ops.lit(False))  # a value no cast can read is unparseable
    return Coerced(
        value=ops.when(~missing & valid, value, ops.null()),
        missing=missing,
        unparseable=~missing & ~valid,
    )


def _integer(ops: Ops, raw: Expr, kind: str, unsigned: bool) -> tuple[Expr, Expr]:
    if kind == "string":
        return ops.to_int64(raw), ops.matches(raw, UNSIGNED_DIGITS if unsigned else DIGITS)
    if kind == "float":
        ok = ops.is_finite(raw) & ops.is_integral(raw) & (raw < MAX_SAFE_FLOAT_ID) & (raw > -MAX_SAFE_FLOAT_ID)
        return ops.to_int64(ops.when(ok, raw, ops.null())), ok
    return ops.to_int64(raw), ops.lit(True)


def _timestamp(ops: Ops, raw: Expr, kind: str) -> tuple[Expr, Expr]:
    """Microseconds since the epoch (UTC) and whether the value was valid."""
    if kind != "string":
        return ops.epoch_micros(raw), ops.lit(True)

    def part(group: int, default: int | None = None) -> Expr:
        number = ops.to_int64(ops.extract(raw, TIMESTAMP, group))
        return number if default is None else ops.coalesce(number, ops.lit(default))

    year, month, day = part(1), part(2), part(3)
    hour, minute, second = part(4, 0), part(5, 0), part(6, 0)
    micros = ops.coalesce(ops.to_int64(ops.pad_right(ops.extract(raw, TIMESTAMP, 7), 6, "0")), ops.lit(0))
    sign = ops.when(ops.extract(raw, TIMESTAMP, 9) == ops.lit("-"), ops.lit(-1), ops.lit(1))
    offset_minutes = sign * (part(10, 0) * 60 + part(11, 0))
    ok = (
        ops.matches(raw, TIMESTAMP)
        & (month >= 1) & (month <= 12)
        & (day >= 1) & (day <= _days_in_month(ops, year, month))
        & (hour < 24) & (minute < 60) & (second < 60)
    )  # fmt: skip
    days = _days_from_civil(ops, year, month, day)
    seconds = ((days * 24 + hour) * 60 + minute) * 60 + second - offset_minutes * 60
    return seconds * 1_000_000 + micros, ok


def _days_from_civil(ops: Ops, year: Expr, month: Expr, day: Expr) -> Expr:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's published `days_from_civil`)."""
    y = year - ops.when(month <= 2, ops.lit(1), ops.lit(0))
    era = ops.floordiv(y, 400)
    year_of_era = y - era * 400
    shifted_month = ops.when(month > 2, month - 3, month + 9)
    day_of_year = ops.floordiv(shifted_month * 153 + 2, 5) + day - 1
    day_of_era = year_of_era * 365 + ops.floordiv(year_of_era, 4) - ops.floordiv(year_of_era, 100) + day_of_year
    return era * 146_097 + day_of_era - 719_468


def _days_in_month(ops: Ops, year: Expr, month: Expr) -> Expr:
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    february = ops.when(leap, ops.lit(29), ops.lit(28))
    return ops.when(month == 2, february, ops.lit(30) + (month + ops.floordiv(month, 8)) % 2)


def reason_column(ops: Ops, coerced: dict[str, Coerced], limits: Limits) -> Expr:
    """The first rule each row breaks, as `field:problem`; null when the row is good."""
    value = {name: c.value for name, c in coerced.items()}
    checks: list[tuple[str, Expr]] = []
    checks += [(f"{f.name}:missing", coerced[f.name].missing) for f in FIELDS if f.required]
    checks += [(f"{name}:unparseable", c.unparseable) for name, c in coerced.items()]
    checks += [(f"{f.name}:negative", value[f.name] < 0) for f in FIELDS if f.kind == "id"]
    amount, fraud, scenario = value["tx_amount"], value["tx_fraud"], value["tx_fraud_scenario"]
    checks += [
        ("tx_amount:not_finite", ~ops.is_finite(amount)),
        ("tx_amount:negative", amount < 0),
        ("tx_amount:above_max", amount > limits.max_amount),
        ("tx_fraud:not_0_or_1", ~ops.is_in(fraud, [0, 1])),
        ("tx_fraud_scenario:negative", scenario < 0),
        ("tx_fraud_scenario:above_max", scenario > MAX_SCENARIO),
        (
            "tx_fraud_scenario:contradicts_label",
            ((scenario > 0) & (fraud == 0)) | ((scenario == 0) & (fraud == 1)),
        ),
        ("tx_datetime:before_valid_from", value["tx_datetime"] < _micros(limits.valid_from)),
        ("tx_datetime:not_before_valid_to", value["tx_datetime"] >= _micros(limits.valid_to)),
    ]
    return ops.coalesce(*(ops.when(condition, ops.lit(reason)) for reason, condition in checks))


def _micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)
