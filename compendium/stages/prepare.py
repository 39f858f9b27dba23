"""``prepare@<dataset>`` and ``amcf data prepare``, one function: a dataset's raw inputs
decoded, split and described into ``build/data/<dataset>/``, and its committed summary
(``splits.json``, ``card.md``, a sample sheet) into the results."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compendium import results
from compendium.data.commands import prepare
from compendium.data.folder import FolderDataset, prepare_folder
from compendium.data.prepared import load_splits, read_info
from compendium.data.raw import check_raw
from compendium.plots.samples import plot_samples


def prepare_stage(dataset: str, profile: str = "embedded", data_dir: str | os.PathLike = "data",
                  out_dir: str | os.PathLike = "build/data",
                  results_dir: str | os.PathLike = "results/embedded/data",
                  folder: Mapping[str, Any] | FolderDataset | None = None,
                  raw: str | None = None, image_size: int | None = None,
                  max_damaged: int | None = None) -> dict[str, Any]:
    """Prepare ``dataset`` (a registered one, or ``folder``: a folder of class subfolders,
    see :class:`compendium.data.folder.FolderDataset`) into ``out_dir/<dataset>/`` and write
    its summary into ``results_dir/<dataset>/``. ``raw``, the folder the stage depends on, is
    checked to hold every raw input first. ``max_damaged``: how many images that cannot be
    decoded it may leave out (default: 0.1 % of them, at least one). Returns the split sizes
    and the card."""
    if raw is not None:  # the stage's dependency holds what it reads
        check_raw(dataset, raw, data_dir, None if folder is None else dict(folder))
    if folder is None:
        prepared = prepare(profile, [dataset], data_dir, out_dir, image_size=image_size,
                           max_damaged=max_damaged)[dataset]
    else:
        entry = (folder if isinstance(folder, FolderDataset)
                 else FolderDataset(name=dataset, kind="folder", **folder))
        prepared = prepare_folder(entry, out_dir)
    info = read_info(dataset, out_dir)
    splits = load_splits(dataset, out_dir)
    out = Path(results_dir) / dataset
    sizes = {"classes": splits.num_classes, "train": len(splits.train), "val": len(splits.val),
             "test": len(splits.test), "image_shape": info.get("image_shape")}
    card = (prepared / "card.md").read_text()
    results.write_data_summary(out, dataset, sizes, card)
    plot_samples(splits.train, splits.classes, out / "samples", title=dataset)
    return {"sizes": sizes, "card": card, "prepared": prepared}
