"""The layer table of every source model, for the paper's scheme figure.

A pretrained source (``pretrain@<source>``) writes its table to
``<results>/sources/<name>/layers.json``. A source taken as it is from the hub (the paper's
ImageNet ResNet-50) has no such stage, so its table is derived from its architecture: the
table depends only on the network's structure, never on its weights.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def derived_layer_table(arch: str) -> list[dict[str, Any]]:
    """``arch``'s layer rows, from a randomly initialised model (no weights are read)."""
    from amcf.layers import layer_table
    from amcf.models import SourceSpec, build_model

    model = build_model(SourceSpec(name=arch, arch=arch, weights=None), num_classes=1)
    return [row.__dict__ for row in layer_table(model)]


def source_layer_tables(results_dir: str | os.PathLike,
                        sources: Mapping[str, Mapping[str, Any]]) -> dict[str, list[dict]]:
    """{source name: layer rows}: the pretrain stage's ``layers.json`` where there is one,
    else derived from the source's ``arch``."""
    tables = {}
    for name, spec in sources.items():
        path = Path(results_dir) / "sources" / name / "layers.json"
        if path.is_file():
            tables[name] = json.loads(path.read_text(encoding="utf-8"))["layers"]
        else:
            tables[name] = derived_layer_table(spec["arch"])
    return tables
