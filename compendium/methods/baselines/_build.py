"""What the baselines' recipes share: one model per source with a new head."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

if TYPE_CHECKING:
    from amcf.models.build import SourceSpec


def as_sources(sources: Any) -> list[SourceSpec]:
    """A SourceSpec or a non-empty sequence of them, as a list."""
    # the models (timm, torchvision) load when a baseline builds them: the report, which
    # reads the registry of methods, builds none
    from amcf.models.build import SourceSpec

    if isinstance(sources, SourceSpec):
        return [sources]
    sources = list(sources)
    if not sources or not all(isinstance(s, SourceSpec) for s in sources):
        raise ValueError("sources must be a SourceSpec or a non-empty sequence of SourceSpec")
    return sources


def build_models(sources: Any, num_classes: int, in_chans: int | None) -> list[nn.Module]:
    """Each source's model with a fresh ``num_classes``-way head."""
    from amcf.models.build import build_model

    return [build_model(s, num_classes, in_chans=in_chans) for s in as_sources(sources)]
