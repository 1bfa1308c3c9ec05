"""Where the current window comes from: the prediction log when it holds served predictions (read back from JSON
lines or a Redis stream, in the records the service writes), else the offline features."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from fraud_detection.features.definitions import FEATURES
from fraud_detection.monitoring.windows import choose_current, logged_rows
from fraud_detection.serving.prediction_log import JsonLinesSink, PredictionRecordsDataset, RedisStreamSink

START = datetime(2018, 9, 1, 10, tzinfo=UTC)


def records(n_days: int, role: str = "served") -> list[dict]:
    """Log records shaped as serving/detector.py writes them, one transaction a day."""
    return [{"request_id": f"r{i}", "time": datetime.now(UTC).isoformat(), "role": role, "transaction_id": i,
             "tx_datetime": (START + timedelta(days=i)).isoformat(), "customer_id": 7, "terminal_id": 3,
             "tx_amount": 10.0 + i, "features": {name: float(i) for name in FEATURES}, "fraud_probability": 0.01 * i,
             "decision": "approve", "model_version": "1", "variant": "champion", "degraded": i == 2, "reasons": [],
             "latency_ms": 1.0} for i in range(n_days)]  # fmt: skip


def test_the_log_read_back_gives_the_served_rows_of_its_latest_window(tmp_path):
    sink = JsonLinesSink(tmp_path / "log")
    sink.write(records(10) + records(3, role="shadow"))
    sink.close()
    logged = logged_rows(PredictionRecordsDataset(folder=str(tmp_path / "log")).load())
    assert len(logged) == 9  # 10 served, one of them degraded (defaults, not the model's view): left out
    assert logged.columns[:4] == ["transaction_id", "customer_id", "terminal_id", "tx_datetime"]
    assert logged["tx_datetime"].dtype == pl.Datetime("us", "UTC") and logged["score"][2] == pytest.approx(0.03)
    source, rows, span = choose_current(pl.LazyFrame(), logged, "auto", window_days=7)
    assert source == "prediction_log" and span.last == (START + timedelta(days=9)).date()
    assert rows["transaction_id"].to_list() == [3, 4, 5, 6, 7, 8, 9]


def test_without_a_log_the_features_are_the_source(tmp_path, offline_features):
    empty = PredictionRecordsDataset(folder=str(tmp_path / "nothing-yet")).load()
    source, rows, span = choose_current(offline_features.lazy(), logged_rows(empty), "auto", window_days=7)
    assert source == "features" and rows is None
    assert span.last == offline_features["tx_datetime"].max().date()
    with pytest.raises(ValueError, match=r"monitor.source is prediction_log but the log holds no served prediction"):
        choose_current(offline_features.lazy(), logged_rows(empty), "prediction_log", window_days=7)
    with pytest.raises(ValueError, match=r"monitor.source is 'log'; expected one of \['auto', 'prediction_log'"):
        choose_current(offline_features.lazy(), logged_rows(empty), "log", window_days=7)


@pytest.mark.redis
def test_the_redis_stream_log_reads_back_the_same():
    stream = f"fd-test-{uuid.uuid4().hex[:8]}"
    sink = RedisStreamSink("redis://127.0.0.1:6379/0", stream)
    try:
        sink.write(records(5))
        frame = PredictionRecordsDataset(redis_url="redis://127.0.0.1:6379/0", stream=stream).load()
        assert frame["transaction_id"].to_list() == [0, 1, 2, 3, 4] and set(FEATURES) <= set(frame.columns)
    finally:
        sink._redis.delete(stream)
        sink.close()


def test_a_window_without_transactions_is_named_with_its_days(offline_features, params):
    from datetime import date

    import numpy as np

    from fraud_detection.monitoring.windows import Span
    from fraud_detection.pipelines.monitor.nodes import MonitoredModel, build_windows

    stale = MonitoredModel("1", Span(date(2017, 1, 1), date(2017, 1, 28)), lambda m: np.zeros(len(m)))
    with pytest.raises(ValueError, match=r"the reference window 2017-01-01..2017-01-28 holds no transaction"):
        build_windows(offline_features.lazy(), pl.DataFrame(), {"champion": stale, "previous": None},
                      params.monitor, label_delay_days=7)  # fmt: skip
    fine = MonitoredModel("1", Span(date(2018, 4, 10), date(2018, 4, 20)), lambda m: np.full(len(m), 0.5))
    windows = build_windows(offline_features.lazy(), pl.DataFrame(), {"champion": fine, "previous": fine},
                            params.monitor, label_delay_days=7)  # fmt: skip
    assert windows.previous == "1" and (windows.labelled["previous_score"] == 0.5).all()
    assert len(windows.current) and len(windows.reference) and windows.source == "features"
