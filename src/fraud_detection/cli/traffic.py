"""`fraud-detection traffic run`: the world after the data's last day (feedback/traffic.py)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from fraud_detection.cli import common

DEFAULT_URL = "http://127.0.0.1:3000"


def add_commands(groups: Any) -> None:
    traffic = common.Group(groups, "traffic", help="play the world after the data's last day against the service",
                           example="fraud-detection traffic run --env production --days 1")  # fmt: skip
    run = traffic.command("run", help="send N more days of simulated transactions, publish their labels",
                          example="fraud-detection traffic run --days 3 --in-process")  # fmt: skip
    run.add_argument("--days", type=_positive_int, required=True, help="days to play")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--url", default=DEFAULT_URL, help=f"a running `bentoml serve` (default {DEFAULT_URL})")
    where.add_argument("--in-process", action="store_true", help="score in this process through the detector")
    run.add_argument("--speed", type=_positive_float, default=None,
                     help="simulated seconds per wall second (default: full speed)")  # fmt: skip
    run.add_argument("--no-rollout-tick", dest="rollout_tick", action="store_false",
                     help="do not tick the running rollout after each day (default: tick it)")  # fmt: skip
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.set_defaults(command=_run)


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of days >= 1")
    return int(text)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected simulated seconds per wall second > 0")
    return value


def _run(args: argparse.Namespace) -> None:
    from fraud_detection.feedback.traffic import run_traffic, world_of

    context = common.opened_context(args)
    world, state = world_of(context)
    print(f"traffic: {args.days} day(s) from day {state.next_day} of the simulation, "
          f"{'in process' if args.in_process else args.url}")  # fmt: skip
    send, close, follow = _in_process(context) if args.in_process else (*_over_http(args.url), None)
    after_day = _rollout_tick(context, follow) if args.rollout_tick else None
    try:
        summary = run_traffic(world, state, args.days, send, args.speed, after_day=after_day)
    finally:
        close()
        world.labels.close()
    report = summary.as_json()
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"sent {report['sent']:,} transactions in {report['seconds']:.1f} s "
          f"({report['transactions_per_second']:,.0f} a second); answers {report['decisions']}, "
          f"degraded {report['degraded']:,}; labels published {report['labels_published']}")  # fmt: skip


def _in_process(context: Any) -> tuple[Any, Any, Any]:
    """Send through a detector in this process; `follow` flushes its log and applies a changed serving plan."""
    from pydantic import TypeAdapter

    from fraud_detection.runtime.collector import serving_collector
    from fraud_detection.serving.assembly import FollowingDetector
    from fraud_detection.serving.schemas import Transaction

    following = FollowingDetector(context)
    transactions = TypeAdapter(list[Transaction])
    serving_collector(context.params.serve.gc_threshold)  # as the service's workers run

    def send(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [p.model_dump() for p in following.detector.predict_batch(transactions.validate_python(rows))]

    return send, following.detector.close, following


def _rollout_tick(context: Any, following: Any) -> Any:
    """After each day: the running rollout's tick on the logs so far, then the service made to follow it (in
    process at once; a service over HTTP by its reload watcher, waited for)."""
    import time

    from fraud_detection.cli.rollout import tick_now
    from fraud_detection.registry.registry import default_actor

    def after_day(day: str) -> str | None:
        if following is not None:
            following.detector.flush()
        state, verdict = tick_now(context, f"traffic run ({default_actor()})")
        if verdict is None:
            return None
        if following is not None:
            following.follow()
        elif verdict.action != "wait":
            time.sleep(context.params.serve.reload_interval_s * 1.5)  # every worker's watcher reloads
        percent = state["steps"][min(state["step"], len(state["steps"]) - 1)]
        reasons = "; ".join(verdict.reasons)
        return f"rollout {state['name']} ({state['status']}, {percent} %): {verdict.action}: {reasons}"

    return after_day


def _over_http(url: str, client: Any = None) -> tuple[Any, Any]:
    """POST each chunk to `url`'s /predict_batch (through `client`, an httpx.Client, if given)."""
    import httpx
    import orjson

    from fraud_detection.feedback import TrafficError

    client = client or httpx.Client(base_url=url, timeout=60.0)

    def send(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        try:
            response = client.post("/predict_batch", content=orjson.dumps({"transactions": rows}),
                                   headers={"content-type": "application/json"})  # fmt: skip
        except httpx.HTTPError as error:
            raise TrafficError(f"the service at {url} cannot be reached ({error}): start `bentoml serve` first, "
                               "or use --in-process") from error  # fmt: skip
        if response.status_code != 200:
            raise TrafficError(f"the service at {url} answered {response.status_code}: {response.text[:300]}")
        return orjson.loads(response.content)  # a few times faster than `response.json()` on 2,000 answers

    return send, client.close
