"""The layer table of every source model, for the paper's scheme figure.

A pretrained source (``pretrain@<source>``) writes its table to
``<results>/sources/<name>/layers.json``. A source taken as it is from the hub (the paper's
ImageNet ResNet-50) has no such stage, so its table is derived from its architecture: the
table depends only on the network's structure, never on its weights.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from compendium import results


def derived_layer_table(arch: str) -> list[dict[str, Any]]:
    """``arch``'s layer rows, from a randomly initialised model (no weights are read)."""
    from amcf.layers import layer_table
    from amcf.models.build import SourceSpec, build_model

    model = build_model(SourceSpec(name=arch, arch=arch, weights=None), num_classes=1)
    return [row.__dict__ for row in layer_table(model)]


def source_layer_tables(results_dir: str | os.PathLike,
                        sources: Mapping[str, Mapping[str, Any]]) -> dict[str, list[dict]]:
    """{source name: layer rows}: the pretrain stage's ``layers.json`` where there is one,
    else derived from the source's ``arch``."""
    tables = {}
    for name, spec in sources.items():
        rows = results.read_layers(results.source_dir(results_dir, name))
        tables[name] = rows if rows is not None else derived_layer_table(spec["arch"])
    return tables
