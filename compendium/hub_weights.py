"""The pretrained weights a profile takes from the hub (``weights: hub`` and ``init: hub``,
e.g. the paper's ImageNet ``resnet50.tv_in1k``), fetched by ``amcf data fetch --profile
paper`` into the cache timm reads them from, so that a compute node without internet
(``HF_HUB_OFFLINE=1``) finds them there.

Kept out of :mod:`compendium.data`, which every ``prepare@`` stage depends on: it is the
fetch command's, and no stage imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from compendium.data.errors import DataError

ASSET = "hub-weights"  # its name for `amcf data fetch --only`
PAPER_PROFILE = Path("profiles/paper.yaml")


def hub_arches(params: dict[str, Any]) -> list[str]:
    """Architectures whose weights a params tree takes from the hub."""
    sources = (params.get("amcf") or {}).get("sources") or {}
    arches = {s["arch"] for s in sources.values() if s.get("weights", "hub") == "hub"}
    arches |= {p["arch"] for p in (params.get("pretrain") or {}).values()
               if p.get("init") == "hub"}
    return sorted(arches)


def profile_hub_arches(params_file: str | Path = "params.yaml") -> list[str]:
    """The hub architectures of the profile the pipeline will run: ``params_file``, or, while
    that is still the embedded default (which uses none), ``profiles/paper.yaml``."""
    for path in (Path(params_file), PAPER_PROFILE):
        if not path.is_file():
            continue
        params = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if params.get("profile") != "embedded":
            return hub_arches(params)
    return []


@dataclass(frozen=True)
class HubWeights:
    """A fetchable: one architecture's pretrained weights, into timm's cache (not data/)."""

    arch: str

    def outputs(self) -> list[tuple[str, str | None]]:
        return []  # nothing under the data directory

    def fetch(self, ctx: Any = None) -> list[Path]:
        from amcf.models.hub import HubWeightsUnavailable, fetch_hub_weights

        try:
            return [fetch_hub_weights(self.arch)]
        except HubWeightsUnavailable as err:
            raise DataError(f"cannot fetch the hub weights of {self.arch}: {err}") from err
        except Exception as err:  # the download itself: huggingface_hub's or torch's errors
            raise DataError(f"cannot fetch the hub weights of {self.arch}: "
                            f"{type(err).__name__}: {err}. Fix: connect to the internet (the "
                            "Hugging Face Hub) and run `amcf data fetch --profile paper` "
                            "again.") from err


def hub_assets(profile: str, params_file: str | Path = "params.yaml"
               ) -> dict[str, tuple[HubWeights, ...]]:
    """``{ASSET: fetchables}`` for the paper profile, nothing for the embedded default."""
    if profile != "paper":
        return {}
    return {ASSET: tuple(HubWeights(a) for a in profile_hub_arches(params_file))}
