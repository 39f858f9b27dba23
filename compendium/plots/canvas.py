"""What every figure shares: a Figure on an Agg canvas (no pyplot: no global state, no display
needed, nothing leaks between calls; a notebook still shows the returned Figure), written
atomically as ``<stem>.pdf`` and ``<stem>.png`` with fixed metadata, so that the same figure
gives the same bytes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from amcf.io import atomic_path

if TYPE_CHECKING:  # pandas loads when a table is read: the sample sheet reads none
    import pandas as pd


def new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, stem: str | os.PathLike | None) -> Figure:
    """Write ``stem.pdf`` and ``stem.png`` (each replaced in one rename); None writes nothing."""
    if stem is not None:
        stem = Path(stem)
        for fmt in ("pdf", "png"):
            with atomic_path(stem.with_name(f"{stem.name}.{fmt}")) as tmp:
                # fixed metadata: the PDF bytes do not change between identical runs
                metadata = {"CreationDate": None} if fmt == "pdf" else {"Software": None}
                fig.savefig(tmp, format=fmt, dpi=150, metadata=metadata)
    return fig


def read_table(data: pd.DataFrame | str | os.PathLike, needed: Sequence[str], what: str):
    import pandas as pd

    frame = data if isinstance(data, pd.DataFrame) else pd.read_csv(data)
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing} (has {list(frame.columns)}); "
                         "pass the file the trainer wrote")
    return frame
