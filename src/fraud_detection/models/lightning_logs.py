"""What Lightning says on every `Trainer`, cut to what a reader of the logs needs.

The backtest builds a Trainer per fold and `train` one more, and Lightning repeats itself on each: its adverts, the
hardware it found, why the fit stopped, hints about data loading. `quiet_lightning()` (idempotent, called before each
Trainer is built) drops the adverts, shows the other lines once per process, and ignores the hints that do not apply
to this project's data, each for the reason given beside it.
"""

from __future__ import annotations

import logging
import warnings

# Lightning's "💡 Tip: ... try installing [litlogger] / [litmodels]": adverts for its cloud services; this project
# runs offline and tracks with MLflow, so they are dropped.
ADVERTS = ("💡 Tip:",)
# The same facts on every Trainer (the hardware found, the device a rank uses, why fit stopped): shown once.
ONCE_PER_PROCESS = ("GPU available:", "TPU available:", "HPU available:", "LOCAL_RANK:", "`Trainer.fit` stopped:")
LOGGERS = ("pytorch_lightning.utilities.rank_zero", "pytorch_lightning.accelerators.cuda")
IGNORED_WARNINGS = (
    # The batches are index slices of tensors already in memory (models/data.py); worker processes would only
    # copy them, so the loaders use none.
    r".*does not have many workers which may be a bottleneck",
    # The Trainer has no logger (`logger=False`): epoch metrics are kept by a callback, not logged per step.
    r".*is smaller than the logging interval",
)
# Lightning 2.6 builds torch's deprecated `LeafSpec` in its own code (utilities/_pytree.py), once per Trainer: a
# FutureWarning no user of this project can act on.
IGNORED_FUTURE_WARNINGS = (r"`isinstance\(treespec, LeafSpec\)` is deprecated",)


class LightningNoise(logging.Filter):
    """Drops Lightning's adverts; lets each line of `ONCE_PER_PROCESS` through the first time it is said."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith(ADVERTS):
            return False
        if message.startswith(ONCE_PER_PROCESS):
            if message in self.seen:
                return False
            self.seen.add(message)
        return True


def quiet_lightning() -> None:
    """Attach `LightningNoise` to Lightning's loggers and ignore `IGNORED_WARNINGS`, once per process."""
    from lightning_fabric.utilities.warnings import PossibleUserWarning

    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, LightningNoise) for f in logger.filters):
            logger.addFilter(LightningNoise())
    present = {(f[0], getattr(f[1], "pattern", None), f[2]) for f in warnings.filters}
    ignored = [(p, PossibleUserWarning) for p in IGNORED_WARNINGS]
    for pattern, category in [*ignored, *((p, FutureWarning) for p in IGNORED_FUTURE_WARNINGS)]:
        # added only when missing: every change to the filters makes Python show "once" warnings again
        if ("ignore", pattern, category) not in present:
            warnings.filterwarnings("ignore", message=pattern, category=category)
