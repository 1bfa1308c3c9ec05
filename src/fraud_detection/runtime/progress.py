"""Progress bars only where someone watches them: the stream they draw on is a terminal and `CI` is not set.

In CI, in DVC's logs and in files a bar redrawn every step is noise (thousands of carriage-returned lines), so there
long work reports through logging alone. One rule for every bar of the project: Lightning's epochs (`fit`), the
backtest's folds, Feast's materialization and papermill's cells.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from pytorch_lightning.callbacks import Callback

T = TypeVar("T")
CI_UNSET = frozenset({"", "0", "false", "no"})  # `CI=false` is a user saying "not CI"
_open_bars = 0  # bars of `progress` drawing now in this process: a nested bar draws below them


def show_progress(stream: IO[str] | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """True when `stream` (default: stderr) is a terminal and the environment's `CI` is unset, empty, 0 or false."""
    stream = sys.stderr if stream is None else stream
    environ = os.environ if environ is None else environ
    if environ.get("CI", "").strip().lower() not in CI_UNSET:
        return False
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress(items: Iterable[T], description: str, unit: str, total: int | None = None) -> Iterator[T]:
    """`items`, with a tqdm bar on stderr while they are consumed when `show_progress()`; the items alone otherwise."""
    global _open_bars  # noqa: PLW0603
    if not show_progress():
        yield from items
        return
    from tqdm import tqdm

    bar = tqdm(items, desc=description, unit=unit, total=total, position=_open_bars, file=sys.stderr,
               dynamic_ncols=True)  # fmt: skip
    _open_bars += 1
    try:
        yield from bar
    finally:
        _open_bars -= 1
        bar.close()


def lightning_progress_bar() -> list[Callback]:
    """The Trainer's progress bar, as its `callbacks` (enable it when the list is not empty): Lightning's tqdm bar,
    below any bar of `progress` drawing now, when both stdout (where Lightning draws) and stderr are terminals."""
    if not (show_progress(sys.stdout) and show_progress(sys.stderr)):
        return []
    from pytorch_lightning.callbacks import TQDMProgressBar

    return [TQDMProgressBar(process_position=_open_bars)]


@contextmanager
def feast_progress(enabled: bool) -> Iterator[None]:
    """Feast's materialization draws a tqdm bar it offers no switch for (feast 0.67: `FeatureStore.materialize`
    builds `tqdm(total=rows, ncols=100)` from the name `tqdm` of `feast.feature_store`). When not `enabled`, that
    name is a tqdm that draws nothing while the block runs. The contract test is in tests/runtime/test_progress.py."""
    if enabled:
        yield
        return
    import feast.feature_store as feast_module

    drawing = feast_module.tqdm

    def silent(*args: Any, **kwargs: Any) -> Any:
        return drawing(*args, **{**kwargs, "disable": True})

    feast_module.tqdm = silent
    try:
        yield
    finally:
        feast_module.tqdm = drawing
