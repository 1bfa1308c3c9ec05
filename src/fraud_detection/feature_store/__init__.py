"""The feature store: Feast definitions, the catalog dataset that materializes them, the online readers and writer
of the serving path, and the one adapter that knows Feast's private names and storage formats."""

import warnings
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quiet_feast() -> Iterator[None]:
    """Feast's offline work without two known, harmless warnings, once per retrieval otherwise: ibis calls duckdb's
    deprecated fetch_arrow_table(), and Feast flags the on-demand view (our one definition of the features). A
    context, not a filter set at import: Feast's modules put their own filters first when imported."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"fetch_arrow_table\(\) is deprecated", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="On demand feature view is an experimental", category=RuntimeWarning)
        yield
