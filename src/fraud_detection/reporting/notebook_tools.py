"""What the report notebooks share: the project's catalog and params as `kedro run` sees them, and figures shown
as PNGs (so that the executed notebook and its HTML carry them)."""

from __future__ import annotations

import os
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fraud_detection.runtime.params import Params


def open_project(project_root: str | Path) -> tuple[Any, Params]:
    """(catalog, params) of the project at `project_root` (the catalog of conf/base + conf/local, params.yaml checked
    and typed, as `kedro run` reads them; the working directory becomes the project root); matplotlib switched to its
    headless backend; polars tables printed in full."""
    import matplotlib
    import polars as pl
    from kedro.io import DataCatalog

    from fraud_detection.runtime.params import checked_params
    from fraud_detection.runtime.project import config_loader

    matplotlib.use("Agg")
    root = Path(project_root).resolve()
    os.chdir(root)  # the catalog's paths are relative to the project root
    loader = config_loader(root)
    catalog, params = DataCatalog.from_config(loader["catalog"]), checked_params(loader["parameters"])
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
