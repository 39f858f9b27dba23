"""The result every search returns, and reading it back from a finished state file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from amcf.search.state import read_state


@dataclass(frozen=True)
class SearchResult:
    """Outcome of one search.

    ``calls`` counts fitness calls including memo look-ups (60 for the paper's swarm);
    ``evaluations`` counts the distinct schemes whose fitness was computed. ``history`` holds
    one JSON-ready row per call, in call order; the row keys depend on the algorithm.
    """

    algorithm: str
    best: tuple[int, ...]
    best_fitness: float
    calls: int
    evaluations: int
    history: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "algorithm": self.algorithm,
            "best": list(self.best),
            "best_fitness": self.best_fitness,
            "calls": self.calls,
            "evaluations": self.evaluations,
            "settings": self.settings,
            "history": self.history,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchResult:
        return cls(
            algorithm=data["algorithm"],
            best=tuple(int(k) for k in data["best"]),
            best_fitness=float(data["best_fitness"]),
            calls=int(data["calls"]),
            evaluations=int(data["evaluations"]),
            history=list(data["history"]),
            settings=dict(data["settings"]),
        )

    @classmethod
    def from_state(cls, path: str | os.PathLike) -> SearchResult:
        """The result stored in a finished search's state file."""
        state = read_state(path)
        if state.get("result") is None:
            done = len(state.get("history", []))
            raise ValueError(
                f"search state {os.fspath(path)!r} is unfinished ({done} of "
                f"{state['total_calls']} calls recorded); run the search again with the same "
                "settings and state_path to resume it"
            )
        return cls.from_dict(state["result"])
