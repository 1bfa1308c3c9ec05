"""`fraud-detection rollout start|status|tick|abort`: a candidate from shadow to champion (experiments/rollout.py)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from fraud_detection.cli import common

ACTOR = common.Option(("--actor",), {"default": None, "help": "who acts (recorded in the history; default user@host)"})


def add_commands(groups: Any) -> None:
    rollout = common.Group(groups, "rollout", help="a candidate's gradual rollout: shadow, growing shares, champion",
                           example="fraud-detection rollout tick --env production --actor on-call",
                           options=(common.ENV, ACTOR))  # fmt: skip
    start = rollout.command("start", help="start rolling out CANDIDATE (a version or an alias) at the first step",
                            example="fraud-detection rollout start challenger --steps 0,5,50,100")  # fmt: skip
    start.add_argument("candidate", nargs="?", default="challenger", help="a version or alias (default challenger)")
    start.add_argument("--steps", type=_steps, default=None, metavar="0,1,5,25,50,100",
                       help="percent of customers per step, 0 = shadow only (default: rollout.steps)")  # fmt: skip
    start.set_defaults(command=_start)
    status = rollout.command("status", help="the rollout's state, history and what a tick would do now",
                             example="fraud-detection rollout status --json")  # fmt: skip
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(command=_status)
    tick = rollout.command("tick", help="judge the current step: advance, promote, abort or wait",
                           example="fraud-detection rollout tick")  # fmt: skip
    tick.add_argument("--json", action="store_true", help="print JSON")
    tick.set_defaults(command=_tick)
    abort = rollout.command("abort", help="stop the rollout: the candidate's share to 0, the champion untouched",
                            example='fraud-detection rollout abort --reason "latency alert"')  # fmt: skip
    abort.add_argument("--reason", default="manual abort", help="why (recorded in the history)")
    abort.set_defaults(command=_abort)


def _steps(text: str) -> list[int]:
    from fraud_detection.experiments.params import check_steps

    try:
        steps = [int(part) for part in text.split(",")]
        check_steps(steps)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected percents rising strictly from 0..100 to 100, "
                                         "e.g. 0,1,5,25,50,100") from None  # fmt: skip
    return steps


def labelled_predictions(context: Any) -> Any:
    """The served predictions with their labels as known now (the feedback stage's join, on the current logs)."""
    from fraud_detection.feedback.outcomes import labelled_predictions as join

    return join(context.catalog.load("prediction_table"), context.catalog.load("label_events"))


def tick_now(context: Any, actor: str) -> tuple[dict[str, Any] | None, Any]:
    """One tick of the running rollout on the current logs (`rollout tick`; `traffic run` once a simulated day)."""
    from fraud_detection.experiments import rollout

    params = context.params
    registry = context.catalog.load("model_registry").open(params.register.model_name)
    state = registry.experiment()
    if not rollout.running(state):  # nothing to judge: the logs are not read (`tick` checks again, locked)
        return state, None
    return rollout.tick(registry, labelled_predictions(context), params.experiment, params.features.label_delay_days,
                        actor)  # fmt: skip


def _start(args: argparse.Namespace) -> None:
    from fraud_detection.experiments import rollout

    context = common.opened_context(args)
    data_time = rollout.latest_served(labelled_predictions(context))
    design = context.params.rollout
    if args.steps:
        design = design.model_copy(update={"steps": args.steps})
    state = rollout.start(common.opened_registry(args), args.candidate, design, data_time, _actor(args))
    print(f"{state['name']}: version {state['versions']['challenger']} against champion version "
          f"{state['versions']['champion']}, steps {state['steps']} %; now {_serving(state)}")  # fmt: skip


def _status(args: argparse.Namespace) -> None:
    from fraud_detection.experiments import rollout

    context, registry = common.opened_context(args), common.opened_registry(args)
    state = registry.experiment()
    if state and state.get("kind", "rollout") != "rollout":
        state = None  # a split experiment: `fraud-detection experiment status`
    params = context.params
    verdict = None
    if state and state["status"] == rollout.RUNNING:
        verdict = rollout.judge(labelled_predictions(context), state, params.experiment,
                                params.features.label_delay_days).as_json()  # fmt: skip
    history = [e.__dict__ for e in rollout.events(registry, state["name"])] if state else []
    if args.json:
        print(json.dumps({"state": state, "next_tick": verdict, "history": history}, indent=2, default=str))
        return
    if not state:
        print("no rollout yet: `fraud-detection rollout start CANDIDATE`")
        return
    _print_state(state)
    if verdict:
        _print_verdict(verdict, "a tick now would")
    common.table([{**e, "move": f"{e['previous'] or '-'} -> {e['version'] or '-'}"} for e in history],
                 ("seq", "time", "action", "alias", "move", "reason"))  # fmt: skip


def _tick(args: argparse.Namespace) -> None:
    context = common.opened_context(args)
    state, verdict = tick_now(context, _actor(args))
    if args.json:
        print(json.dumps({"state": state, "verdict": verdict.as_json() if verdict else None}, indent=2))
        return
    if verdict is None:
        print("no rollout running" + (f" ({state['name']}: {state['status']})" if state else ""))
        return
    _print_verdict(verdict.as_json(), "tick")
    _print_state(state)


def _abort(args: argparse.Namespace) -> None:
    from fraud_detection.experiments import rollout

    state = rollout.abort(common.opened_registry(args), _actor(args), args.reason)
    _print_state(state)


def _actor(args: argparse.Namespace) -> str:
    from fraud_detection.registry.registry import default_actor

    return args.actor or default_actor()


def _serving(state: dict[str, Any]) -> str:
    shares = ", ".join(f"{alias} {share:.0%}" for alias, share in state["variants"].items())
    return shares + (f", shadow {state['shadow']}" if state["shadow"] else "")


def _print_state(state: dict[str, Any]) -> None:
    percent = state["steps"][min(state["step"], len(state["steps"]) - 1)]
    print(f"{state['name']}: {state['status']}, step {state['step']} ({percent} %) of {state['steps']}; "
          f"serving {_serving(state)}; versions {state['versions']}")  # fmt: skip


def _print_verdict(verdict: dict[str, Any], who: str) -> None:
    print(f"{who}: {verdict['action']}: {'; '.join(verdict['reasons'])}")
    if verdict["counts"]:
        print(f"  matured labelled: {verdict['counts']}")
    if verdict["checks"]:
        common.table(verdict["checks"], ("role", "metric", "tolerance", "champion", "candidate", "harm", "harm_low",
                                         "harm_high", "customers", "verdict"))  # fmt: skip
