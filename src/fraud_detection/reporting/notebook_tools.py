"""What the report notebooks share: the project's catalog and params as `kedro run` sees them, and figures shown
as PNGs (so that the executed notebook and its HTML carry them)."""

from __future__ import annotations

import logging
from io import BytesIO
from pathlib import Path
from typing import Any


def open_project(project_root: str | Path) -> tuple[Any, dict[str, Any]]:
    """(catalog, params) of the project at `project_root` (conf/base/catalog.yml and params.yaml); matplotlib
    switched to its headless backend; polars tables printed in full."""
    import matplotlib
    import polars as pl
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    matplotlib.use("Agg")
    root = Path(project_root).resolve()
    bootstrap_project(root)
    logging.disable(logging.WARNING)  # Kedro checks every pipeline's type hints as it reads the parameters
    try:
        with KedroSession.create(project_path=root) as session:
            context = session.load_context()
            catalog, params = context.catalog, context.params
    finally:
        logging.disable(logging.NOTSET)
    pl.Config(tbl_rows=40, tbl_cols=20, tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True,
              float_precision=4)  # fmt: skip
    return catalog, params


def show(fig: Any) -> None:
    """Put the figure in the notebook (and its HTML) as a PNG, and close it."""
    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    display(Image(buffer.getvalue()))
