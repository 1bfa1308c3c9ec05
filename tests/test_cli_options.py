"""`fraud-detection`'s parsers: a group's options are accepted before and after its command with the same meaning, an
unknown option is refused by name, and every --help (top level, group, command) ends with an example that parses."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterator

import pytest

from fraud_detection import cli
from fraud_detection.cli import common
from fraud_detection.runtime.project import NotInProject
from tests.conftest import PROJECT_ROOT

Names = tuple[str, ...]  # a command line's group and command names: (), ("registry",), ("registry", "status")


def _children(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parsers of `parser`'s subcommands by name (argparse lists them only on its subparsers action)."""
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {name: child for action in actions for name, child in action.choices.items()}


def _tree(parser: argparse.ArgumentParser, path: Names = ()) -> Iterator[tuple[Names, argparse.ArgumentParser]]:
    yield path, parser
    for name, child in _children(parser).items():
        yield from _tree(child, (*path, name))


def _example(parser: argparse.ArgumentParser) -> str:
    lines = (parser.epilog or "").splitlines()
    assert len(lines) == 2 and lines[0] == common.EXAMPLE_HEADING, (
        f"`{parser.prog} --help` ends with {parser.epilog!r}; expected {common.EXAMPLE_HEADING!r} and one command "
        "line (make the parser with common.add_parser or common.Group)"
    )
    return lines[1].strip()


def _parsed(argv: list[str]) -> dict:
    return vars(cli.parser().parse_args(argv))


def _group_options(group: argparse.ArgumentParser) -> list[argparse.Action]:
    """The options a group takes itself (not --help)."""
    return [a for a in group._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]


PARSERS = list(_tree(cli.parser()))
GROUPS = [(path, parser) for path, parser in PARSERS if len(path) == 1 and _children(parser)]
COMMANDS_OF_GROUPS_WITH_OPTIONS = [
    (path, command) for (group_path, group) in GROUPS if _group_options(group)
    for path, command in PARSERS if len(path) == 2 and path[0] == group_path[0]
]  # fmt: skip


def test_the_tree_has_the_top_level_every_group_and_every_command() -> None:
    paths = {path for path, _ in PARSERS}
    assert {
        (),
        ("registry",),
        ("registry", "status"),
        ("notebook",),
        ("dev", "dvc-deps"),
        ("rollout", "abort"),
    } <= paths
    assert len(COMMANDS_OF_GROUPS_WITH_OPTIONS) >= 15  # registry 5, rollout 4, experiment 4, ...


def _ids(pairs: list[tuple[Names, argparse.ArgumentParser]]) -> list[str]:
    return [" ".join(path) or "fraud-detection" for path, _ in pairs]


@pytest.mark.parametrize(("path", "parser"), PARSERS, ids=_ids(PARSERS))
def test_every_help_ends_with_an_example_of_itself_that_parses(path: Names, parser: argparse.ArgumentParser,
                                                               capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    example = _example(parser)
    assert parser.formatter_class is argparse.RawDescriptionHelpFormatter
    assert parser.format_help().rstrip().endswith(f"{common.EXAMPLE_HEADING}\n  {example}")  # shown as written
    program, *argv = shlex.split(example)
    assert program == "fraud-detection" and argv[: len(path)] == list(path), f"{example!r} is not a {path} command"
    namespace = cli.parser().parse_args(argv)  # a usage error exits here, with argparse's message
    assert callable(namespace.command)
    assert not capsys.readouterr().err


def test_the_notebook_example_names_a_notebook_of_the_project() -> None:
    notebook = dict(PARSERS)[("notebook",)]
    name = shlex.split(_example(notebook))[-1]
    assert (PROJECT_ROOT / "notebooks" / f"{name}.ipynb").is_file()


@pytest.mark.parametrize(
    ("path", "command"), COMMANDS_OF_GROUPS_WITH_OPTIONS, ids=_ids(COMMANDS_OF_GROUPS_WITH_OPTIONS)
)
def test_a_groups_options_mean_the_same_before_and_after_its_command(
    path: Names, command: argparse.ArgumentParser
) -> None:
    group = dict(PARSERS)[path[:1]]
    argv = shlex.split(_example(command))[1:]
    for option in _group_options(group):
        flag, value = option.option_strings[-1], f"given-{option.dest}"
        before = _parsed([path[0], flag, value, *argv[1:]])
        after = _parsed([*argv, flag, value])
        assert before == after, f"{' '.join(path)}: {flag} before and after the command differ"
        assert after[option.dest] == value
        assert _parsed(argv)[option.dest] == option.default  # not given: the group's default, at either level


def test_the_registry_env_reads_the_same_either_side() -> None:
    before = _parsed(["registry", "--env", "production", "status", "--json"])
    after = _parsed(["registry", "status", "--json", "--env", "production"])
    assert before == after and after["env"] == "production" and after["json"] is True
    assert _parsed(["registry", "status"])["env"] is None


def test_given_on_both_sides_the_later_one_wins() -> None:
    assert _parsed(["rollout", "--actor", "a", "tick", "--actor", "b"])["actor"] == "b"
    assert _parsed(["registry", "--env", "base", "status", "--env", "production"])["env"] == "production"


def test_env_after_the_command_reaches_the_project_configuration(monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    asked: list[str | None] = []

    def context(env: str | None) -> None:
        asked.append(env)
        raise NotInProject(f"no project for env {env!r}")

    monkeypatch.setattr(common, "context", context)
    assert cli.main(["registry", "status", "--env", "production"]) == cli.EXIT_BAD_INPUT
    assert cli.main(["monitor", "--env", "staging", "act"]) == cli.EXIT_BAD_INPUT
    assert asked == ["production", "staging"]
    assert "no project for env 'production'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "refused"),
    [
        (["registry", "status", "--bogus"], "--bogus"),
        (["registry", "--bogus", "status"], "--bogus"),
        (["dev", "dvc-deps", "--env", "production"], "--env"),  # dev has no environment
        (["registry", "status", "--actor", "me"], "--actor"),  # promote and rollback take --actor, status does not
    ],
)
def test_an_unknown_option_is_refused_by_name(argv: list[str], refused: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.parser().parse_args(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and refused in err


def test_a_missing_option_value_names_the_option(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["registry", "status", "--env"])
    assert "--env: expected one argument" in capsys.readouterr().err
