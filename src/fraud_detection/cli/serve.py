"""`fraud-detection serve build`: a Bento of the real-time service with the serving aliases' models baked in."""

from __future__ import annotations

import argparse
from typing import Any

from fraud_detection.cli import common


def add_commands(groups: Any) -> None:
    serve = common.Group(groups, "serve", help="the real-time service: package it",
                         example="fraud-detection serve build --env production")  # fmt: skip
    build = serve.command("build", help="`bentoml build` with the serving aliases' models baked in",
                          example="fraud-detection serve build")  # fmt: skip
    build.set_defaults(command=_build_bento)


def _build_bento(args: argparse.Namespace) -> None:
    """Import every alias the service serves (`serve.ab.variants`, `serve.shadow`) into BentoML's model store, then
    build bentofile.yaml with their tags as Bento arguments (the service class makes them its models)."""
    import bentoml

    from fraud_detection.registry.bento import import_alias

    registry, serve = common.opened_registry(args), common.opened_context(args).params.serve
    aliases = sorted({*serve.ab.variants, *([serve.shadow] if serve.shadow else [])})
    tags = {alias: str(import_alias(registry, alias).tag) for alias in aliases}
    bento = bentoml.bentos.build_bentofile("bentofile.yaml", args=tags)
    print(f"built {bento.tag} with {', '.join(f'{a} = {t}' for a, t in tags.items())} ({bento.path})")
