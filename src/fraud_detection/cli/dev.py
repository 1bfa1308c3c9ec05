"""`fraud-detection dev dvc-deps [--check | --write]`: each DVC stage's code deps, the static import closure of what
it runs (fraud_detection.runtime.stage_deps)."""

from __future__ import annotations

import argparse
from typing import Any

from fraud_detection.cli import common

EXIT_STALE = 1


def add_commands(groups: Any) -> None:
    dev = common.Group(groups, "dev", help="development tools (dvc.yaml's code deps)",
                       example="fraud-detection dev dvc-deps --check", options=())  # fmt: skip
    deps = dev.command("dvc-deps", help="each stage's code deps: the modules it imports (default: print)",
                       example="fraud-detection dev dvc-deps --write")  # fmt: skip
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
