"""The swarm's settings, with the paper's values as defaults: the one schema that the swarm
(:func:`amcf.search.pso.pso`), ``params.yaml``'s ``search.pso`` and the paper's text read.

The paper: 10 particles, 5 iterations (10 + 50 = 60 fitness calls), c1 = c2 = 1.5, inertia
from 1.4 down by (1.4 - 0.7) / iterations after each iteration, velocities clipped to +-5.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SwarmSettings(BaseModel):
    """One AMLS swarm (``run_amls(..., search_settings=SwarmSettings(...))``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    particles: int = Field(10, ge=1)
    iterations: int = Field(5, ge=1)
    seed: int = Field(0, ge=0)
    c1: float = Field(1.5, ge=0)
    c2: float = Field(1.5, ge=0)
    w_start: float = Field(1.4, ge=0)
    w_end: float = Field(0.7, ge=0)
    v_max: float = Field(5.0, gt=0)


PAPER = SwarmSettings()
