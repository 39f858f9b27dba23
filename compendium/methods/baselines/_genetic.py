"""Genetic layer selection: the search of the ALS baseline (layer selection by a genetic
algorithm), with the swarm's budget, memo, state file and resume.

Genomes are integer schemes with ``low[j] <= g_j <= high[j]``. A generational algorithm
with elitism: the initial population is drawn uniformly and evaluated; each later
generation keeps the ``elite`` best genomes (without calling the fitness again) and fills
the rest with children of tournament-selected parents, each child evaluated (a call) as it
is made. The search stops after exactly ``budget`` calls, possibly mid-generation. Fitness is
maximised; ties go to the earlier genome.

Random draws, all from one ``numpy.random.default_rng(seed)`` and in this order:

1. the initial population ``rng.integers(low, high, endpoint=True, size=(population, dims))``
   (row-major: genome 0's genes first);
2. per child: two tournaments, each ``rng.integers(0, population, size=tournament)``
   (indices drawn with replacement, the fittest wins, the first of equals); then
   ``rng.random()`` against ``crossover_rate``; on crossover, ``"uniform"`` draws
   ``rng.random(dims)`` (gene from the first parent where < 0.5) and ``"one_point"`` draws
   ``rng.integers(1, dims)`` when ``dims > 1`` (genes before the point from the first
   parent); without crossover the child copies the first parent; then the mutation mask
   ``rng.random(dims) < mutation_rate`` and the steps
   ``rng.integers(-mutation_step, mutation_step, endpoint=True)`` (always drawn, added where
   the mask is set, the gene then clipped to its bounds; a zero step leaves it unchanged).

History rows: ``call``, ``generation`` (0 = initial), ``individual`` (index in the
generation), ``parents`` (indices in the previous generation, None initially),
``scheme``, ``fitness``, ``cached`` and ``best_fitness``. The elites take the first
``elite`` indices of each later generation and have no row, as they cost no call.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from amcf.search.memo import Ledger, Scheme
from amcf.search.result import SearchResult
from amcf.search.validate import (
    check_bounds,
    check_context,
    check_fitness,
    check_float,
    check_int,
)

GENETIC_VERSION = 1
CROSSOVERS = ("uniform", "one_point")


def _check_settings(
    dims: int,
    low: float | Sequence[float],
    high: float | Sequence[float],
    budget: int,
    seed: int,
    population: int,
    tournament: int,
    crossover: str,
    crossover_rate: float,
    mutation_rate: float,
    mutation_step: int | Sequence[int] | None,
    elite: int,
    context: Any,
) -> dict[str, Any]:
    dims = check_int("dims", dims, 1)
    lo, hi = check_bounds(dims, low, high, integer=True)
    population = check_int("population", population, 2)
    elite = check_int("elite", elite, 0)
    if elite >= population:
        raise ValueError(
            f"elite ({elite}) must be smaller than population ({population}); otherwise no "
            "child is ever made"
        )
    if mutation_step is None:
        # A tenth of the range: 5 layers on [0, 48], the swarm's velocity limit.
        steps = [max(1, round(0.1 * (h - l))) for l, h in zip(lo, hi, strict=True)]
    else:
        given = list(mutation_step) if isinstance(mutation_step, Sequence) else [mutation_step]
        if len(given) not in (1, dims):
            raise ValueError(
                f"mutation_step has {len(given)} entries but dims is {dims}; pass one step "
                "per dimension or a single integer"
            )
        steps = [check_int("mutation_step", v, 1) for v in given] * (dims // len(given))
    if crossover not in CROSSOVERS:
        raise ValueError(f"crossover must be one of {CROSSOVERS}, got {crossover!r}")
    return {
        "algorithm": "genetic",
        "version": GENETIC_VERSION,
        "dims": dims,
        "low": [int(v) for v in lo],
        "high": [int(v) for v in hi],
        "budget": check_int("budget", budget, 1),
        "seed": check_int("seed", seed, 0),
        "population": population,
        "tournament": check_int("tournament", tournament, 1),
        "crossover": crossover,
        "crossover_rate": check_float("crossover_rate", crossover_rate, 0.0, 1.0),
        "mutation_rate": check_float("mutation_rate", mutation_rate, 0.0, 1.0),
        "mutation_step": steps,
        "elite": elite,
        "context": check_context(context),
    }


def _select(rng: np.random.Generator, scores: list[float], size: int) -> int:
    entrants = rng.integers(0, len(scores), size=size)
    winner = int(entrants[0])
    for j in entrants[1:]:
        if scores[j] > scores[winner]:
            winner = int(j)
    return winner


def _child(
    rng: np.random.Generator, a: np.ndarray, b: np.ndarray, s: dict[str, Any]
) -> np.ndarray:
    dims = s["dims"]
    child = a.copy()
    if rng.random() < s["crossover_rate"]:
        if s["crossover"] == "uniform":
            child = np.where(rng.random(dims) < 0.5, a, b)
        elif dims > 1:
            point = int(rng.integers(1, dims))
            child[point:] = b[point:]
    mutate = rng.random(dims) < s["mutation_rate"]
    step = np.array(s["mutation_step"])
    delta = rng.integers(-step, step, endpoint=True)
    return np.where(mutate, np.clip(child + delta, s["low"], s["high"]), child)


def _ranked(scores: list[float]) -> list[int]:
    # Stable sort: among equal fitness the earlier genome ranks first.
    return sorted(range(len(scores)), key=lambda i: -scores[i])


def genetic_search(
    fitness: Callable[[Scheme], float],
    dims: int,
    low: int | Sequence[int],
    high: int | Sequence[int],
    budget: int = 60,
    seed: int = 0,
    population: int = 10,
    tournament: int = 3,
    crossover: str = "uniform",
    crossover_rate: float = 0.9,
    mutation_rate: float = 0.3,
    mutation_step: int | Sequence[int] | None = None,
    elite: int = 1,
    state_path: str | os.PathLike | None = None,
    context: Any = None,
) -> SearchResult:
    """Genetic search over integer schemes in ``[low, high]`` (both ends included) with
    exactly ``budget`` fitness calls (memo look-ups count). ``state_path`` and ``context``
    work as in :func:`amcf.search.pso`."""
    check_fitness(fitness)
    s = _check_settings(
        dims, low, high, budget, seed, population, tournament,
        crossover, crossover_rate, mutation_rate, mutation_step, elite, context,
    )  # fmt: skip
    ledger = Ledger(fitness, s, s["budget"], state_path)
    rng = np.random.default_rng(s["seed"])

    genomes = list(rng.integers(s["low"], s["high"], endpoint=True, size=(s["population"], dims)))
    scores: list[float] = []
    for i, genome in enumerate(genomes):
        if ledger.done:
            break
        row = {"generation": 0, "individual": i, "parents": None}
        scores.append(ledger.call(tuple(int(g) for g in genome), row))

    generation = 0
    while not ledger.done:
        generation += 1
        keep = _ranked(scores)[: s["elite"]]
        new_genomes = [genomes[i] for i in keep]
        new_scores = [scores[i] for i in keep]
        while len(new_genomes) < s["population"] and not ledger.done:
            pa = _select(rng, scores, s["tournament"])
            pb = _select(rng, scores, s["tournament"])
            child = _child(rng, genomes[pa], genomes[pb], s)
            row = {"generation": generation, "individual": len(new_genomes), "parents": [pa, pb]}
            new_scores.append(ledger.call(tuple(int(g) for g in child), row))
            new_genomes.append(child)
        genomes, scores = new_genomes, new_scores
    return ledger.result()
