"""The docs stay in step with the project: a README a newcomer can read (size, the two commands first), a page per
DVC stage linked from the README, the four topic pages, and links that resolve inside the repository."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_BYTES = 12_000
TOPIC_PAGES = ("architecture.md", "serving.md", "operations.md", "performance.md")
SHELL_FENCES = {"bash", "sh", "shell", "console", "zsh"}

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target "title") and ![alt](target); the target ends at whitespace or the closing parenthesis
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HTML_LINK = re.compile(r"""<(?:a|img)\s[^>]*?(?:href|src)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def prose_lines(text: str, keep_code: bool = False) -> list[str]:
    """The lines outside fenced code blocks, with inline code removed (unless `keep_code`)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line if keep_code else INLINE_CODE.sub("", line))
    return lines


def links(path: Path) -> list[str]:
    """Every link target of a markdown file (inline, reference definitions, HTML), outside code."""
    found = []
    for line in prose_lines(path.read_text(encoding="utf-8")):
        found += INLINE_LINK.findall(line) + HTML_LINK.findall(line)
        if match := REFERENCE_DEFINITION.match(line):
            found.append(match.group(1))
    return found


def relative_links(path: Path) -> list[str]:
    return [target for target in links(path) if not SCHEME.match(target) and not target.startswith("//")]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|<[^>]+>", "", heading).strip().lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    result = set()
    for line in prose_lines(path.read_text(encoding="utf-8"), keep_code=True):
        if match := re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line):
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            result.add(base if count == 0 else f"{base}-{count}")
    return frozenset(result)


def resolve(source: Path, target: str) -> tuple[Path, str]:
    """The file a relative link points at (the source itself for `#anchor`) and its anchor."""
    location, _, anchor = target.partition("#")
    location = location.split("?", 1)[0]
    if not location:
        return source, anchor
    base = ROOT if location.startswith("/") else source.parent
    return (base / location.lstrip("/")).resolve(), anchor


def dvc_stages() -> list[str]:
    return list(yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"])


def shell_commands(text: str) -> list[str]:
    """The commands of the fenced shell blocks, in order: comments, blank lines and prompts stripped."""
    commands, language = [], None
    for line in text.splitlines():
        if FENCE.match(line):
            language = None if language is not None else (line.strip().strip("`~").strip().split() or [""])[0]
            continue
        if language in SHELL_FENCES:
            command = re.sub(r"\s+#.*$", "", line.strip().removeprefix("$ ").strip())
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


def test_the_readme_is_short() -> None:
    size = README.stat().st_size
    assert size <= README_MAX_BYTES, (
        f"README.md is {size} bytes; expected at most {README_MAX_BYTES}: move detail to docs/"
    )


def test_the_readme_starts_with_the_two_commands() -> None:
    first_two = shell_commands(README.read_text(encoding="utf-8"))[:2]
    assert first_two == ["make repro", "make test"], f"README's first shell commands are {first_two}"


@pytest.mark.parametrize("stage", dvc_stages())
def test_every_stage_has_its_page_and_the_readme_links_it(stage: str) -> None:
    page = DOCS / "stages" / f"{stage}.md"
    assert page.is_file(), f"dvc.yaml stage {stage!r} has no page; expected {page.relative_to(ROOT)}"
    linked = {resolve(README, target)[0] for target in relative_links(README)}
    assert page.resolve() in linked, f"README.md does not link docs/stages/{stage}.md"


def test_every_stage_page_is_a_stage() -> None:
    stages = set(dvc_stages())
    extra = [page.name for page in sorted((DOCS / "stages").glob("*.md")) if page.stem not in stages]
    assert not extra, f"docs/stages/ has pages for no dvc.yaml stage: {extra}; expected one page per stage"


@pytest.mark.parametrize("name", TOPIC_PAGES)
def test_the_topic_pages_exist(name: str) -> None:
    assert (DOCS / name).is_file(), f"docs/{name} is missing"


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repository(path: Path) -> None:
    problems = []
    for target in relative_links(path):
        file, anchor = resolve(path, target)
        if not file.is_relative_to(ROOT):
            problems.append(f"{target}: outside the repository")
        elif not file.exists():
            problems.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            problems.append(f"{target}: no heading #{anchor} in {file.relative_to(ROOT)}")
    assert not problems, f"{path.relative_to(ROOT)}: " + "; ".join(problems)


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_points_outside_the_repository(path: Path) -> None:
    """Not even in code: a path like ../shared/... works on one machine and nowhere else."""
    text = path.read_text(encoding="utf-8")
    outside = sorted(set(re.findall(r"(?:\.\./)+shared\S*|\S*/work/shared\S*", text)))
    for candidate in re.findall(r"(?<![\w.])((?:\.\./)+[\w./<>-]*)", text):
        if not (path.parent / candidate).resolve().is_relative_to(ROOT):
            outside.append(candidate)
    assert not outside, f"{path.relative_to(ROOT)} points outside the repository: {sorted(set(outside))}"
