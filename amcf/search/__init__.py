"""Searches for the freezing scheme: the paper's particle swarm (AMLS), a synchronous swarm
for several GPUs, and the genetic search of the ALS baseline. All share one result type, a
memo (a repeated scheme is looked up, never re-evaluated) and a resumable state file."""

from amcf.search.genetic import genetic_search
from amcf.search.memo import StateMismatchError, read_state
from amcf.search.pso import inertia_schedule, pso, pso_sync
from amcf.search.result import SearchResult

__all__ = [
    "SearchResult",
    "StateMismatchError",
    "genetic_search",
    "inertia_schedule",
    "pso",
    "pso_sync",
    "read_state",
]
