"""`fraud-detection dev dvc-deps [--check | --write]`: each DVC stage's code deps, the static import closure of what
it runs (fraud_detection.runtime.stage_deps)."""

from __future__ import annotations

import argparse
from typing import Any

EXIT_STALE = 1


def add_commands(groups: Any) -> None:
    dev = groups.add_parser("dev", help="development tools (dvc.yaml's code deps)")
    commands = dev.add_subparsers(required=True, metavar="COMMAND")
    deps = commands.add_parser("dvc-deps", help="each stage's code deps: the modules it imports (default: print)")
    mode = deps.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit status 1, with what differs, unless dvc.yaml has them")
    mode.add_argument("--write", action="store_true", help="write them into dvc.yaml (its other lines unchanged)")
    deps.set_defaults(command=_dvc_deps)


def _dvc_deps(args: argparse.Namespace) -> None:
    """Print, check or write the code deps of every pipeline and notebook stage of dvc.yaml."""
    from fraud_detection.runtime import stage_deps
    from fraud_detection.runtime.project import project_root

    root = project_root()
    if args.check:
        ok, lines = stage_deps.check_code_deps(root)
        print("\n".join(lines))
        if not ok:
            raise SystemExit(EXIT_STALE)
    elif args.write:
        changed = stage_deps.write_code_deps(root)
        print(f"{stage_deps.DVC_FILE}: {'code deps written' if changed else 'code deps already up to date'}")
    else:
        for stage, needed in stage_deps.stage_deps(root).items():
            print(f"{stage}:")
            print("\n".join(f"  {path}" for path in needed.deps))
