"""Particle swarm optimisation for AMLS (adaptive multi-source layer selection).

:func:`pso` is the paper's swarm exactly (see docs/method.md, "AMLS: searching the scheme"):
asynchronous, each particle is evaluated as soon as it moves and a new global best is seen
by the particles after it in the same iteration. Fitness is maximised.

Random draws, all from one ``numpy.random.default_rng(seed)`` and in this order (a replay or
an independent re-implementation must follow it):

1. positions ``rng.uniform(low, high, size=(particles, dims))``, row-major: particle 0's
   dimensions first (``low``/``high`` broadcast per dimension);
2. velocities ``rng.uniform(-v_max, v_max, size=(particles, dims))``, same layout;
3. for each iteration, for each particle in order: ``r1, r2 = rng.random(2)`` (r1 first),
   drawn whether or not the particle's new scheme is already in the memo.

Nothing else draws. Scheme of a position: ``tuple(int(x_j))`` (truncation toward zero).
Inertia ``w`` starts at ``w_start`` and, after each iteration, ``w = w - (w_start - w_end) /
iterations`` (1.4, 1.26, 1.12, 0.98, 0.84 with the defaults). pbest and gbest change only on
a strict improvement; the initial gbest is the first initial particle with the best fitness.

:func:`pso_sync` is a deliberate deviation from the paper for several GPUs: the whole
generation moves with the gbest of the previous generation and is then evaluated at once,
its distinct new schemes in parallel through a ``concurrent.futures.Executor`` (through
``amcf.amls.run_amls``: as Ray tasks when a Ray cluster is attached, see
:mod:`compendium.pipeline.fanout`). It uses the same draws in the same order, so it differs from
:func:`pso` only through the later gbest; the paper's update is asynchronous.

History rows (one per call): ``call`` (1-based), ``iteration`` (0 = the initial evaluation,
then 1..iterations), ``particle``, ``inertia`` (None for the initial evaluation),
``position`` and ``velocity`` (floats after the move), ``scheme``, ``fitness``, ``cached``
(the scheme was already called earlier in this search) and ``best_fitness`` (so far).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any

import numpy as np

from amcf.search.memo import Ledger, Scheme
from amcf.search.result import SearchResult
from amcf.search.settings import PAPER
from amcf.search.validate import (
    check_bounds,
    check_context,
    check_fitness,
    check_float,
    check_int,
    check_positive,
)

# Raise when the draw order or update rule changes: old state files then stop resuming.
PSO_VERSION = 1


class _Swarm:
    def __init__(
        self,
        rng: np.random.Generator,
        low: np.ndarray,
        high: np.ndarray,
        particles: int,
        v_max: float,
    ) -> None:
        dims = low.shape[0]
        self.low, self.high, self.v_max = low, high, v_max
        self.x = rng.uniform(low, high, size=(particles, dims))
        self.v = rng.uniform(-v_max, v_max, size=(particles, dims))
        self.pbest = self.x.copy()
        self.pbest_fit = np.full(particles, -np.inf)
        self.gbest = self.x[0].copy()
        self.gbest_fit = -np.inf

    def scheme(self, i: int) -> Scheme:
        return tuple(int(value) for value in self.x[i])

    def row(self, iteration: int, i: int, inertia: float | None) -> dict[str, Any]:
        return {
            "iteration": iteration,
            "particle": i,
            "inertia": inertia,
            "position": self.x[i].tolist(),
            "velocity": self.v[i].tolist(),
        }

    def move(self, i: int, w: float, r1: float, r2: float, c1: float, c2: float) -> None:
        v = w * self.v[i] + c1 * r1 * (self.pbest[i] - self.x[i]) + c2 * r2 * (
            self.gbest - self.x[i]
        )
        self.v[i] = np.clip(v, -self.v_max, self.v_max)
        self.x[i] = np.clip(self.x[i] + self.v[i], self.low, self.high)

    def accept(self, i: int, fitness: float) -> None:
        if fitness > self.pbest_fit[i]:
            self.pbest[i] = self.x[i]
            self.pbest_fit[i] = fitness
        if fitness > self.gbest_fit:
            self.gbest = self.x[i].copy()
            self.gbest_fit = fitness


def _prepare(
    algorithm: str,
    fitness: Callable[[Scheme], float],
    dims: int,
    low: float | Sequence[float],
    high: float | Sequence[float],
    particles: int,
    iterations: int,
    seed: int,
    c1: float,
    c2: float,
    w_start: float,
    w_end: float,
    v_max: float,
    state_path: str | os.PathLike | None,
    context: Any,
) -> tuple[Ledger, _Swarm, np.random.Generator]:
    check_fitness(fitness)
    dims = check_int("dims", dims, 1)
    lo, hi = check_bounds(dims, low, high, integer=False)
    settings = {
        "algorithm": algorithm,
        "version": PSO_VERSION,
        "dims": dims,
        "low": lo.tolist(),
        "high": hi.tolist(),
        "particles": check_int("particles", particles, 1),
        "iterations": check_int("iterations", iterations, 1),
        "seed": check_int("seed", seed, 0),
        "c1": check_float("c1", c1, low=0.0),
        "c2": check_float("c2", c2, low=0.0),
        "w_start": check_float("w_start", w_start),
        "w_end": check_float("w_end", w_end),
        "v_max": check_positive("v_max", v_max),
        "context": check_context(context),
    }
    total = settings["particles"] * (settings["iterations"] + 1)
    ledger = Ledger(fitness, settings, total, state_path)
    rng = np.random.default_rng(settings["seed"])
    swarm = _Swarm(rng, lo, hi, settings["particles"], settings["v_max"])
    return ledger, swarm, rng


def inertia_schedule(iterations: int = PAPER.iterations, w_start: float = PAPER.w_start,
                     w_end: float = PAPER.w_end) -> list[float]:
    """The inertia used in each iteration (1.4, 1.26, 1.12, 0.98, 0.84 by default)."""
    iterations = check_int("iterations", iterations, 1)
    step = (w_start - w_end) / iterations
    inertias, w = [], w_start
    for _ in range(iterations):
        inertias.append(w)
        w = w - step
    return inertias


def pso(
    fitness: Callable[[Scheme], float],
    dims: int,
    low: float | Sequence[float] = 0,
    high: float | Sequence[float] = 48,
    particles: int = PAPER.particles,
    iterations: int = PAPER.iterations,
    seed: int = PAPER.seed,
    c1: float = PAPER.c1,
    c2: float = PAPER.c2,
    w_start: float = PAPER.w_start,
    w_end: float = PAPER.w_end,
    v_max: float = PAPER.v_max,
    state_path: str | os.PathLike | None = None,
    context: Any = None,
) -> SearchResult:
    """The paper's asynchronous swarm: ``particles * (iterations + 1)`` fitness calls.

    ``fitness`` takes the scheme (a tuple of ``dims`` ints) and returns a float, higher is
    better. ``low``/``high`` are a number or one bound per dimension. With ``state_path`` the
    memo and settings are written (atomically) after every evaluation, and an existing file
    is resumed; ``context`` (JSON-serialisable, e.g. the dataset and source names) is part of
    the settings, so a file written for another problem is refused.
    """
    ledger, swarm, rng = _prepare(
        "pso", fitness, dims, low, high, particles, iterations, seed,
        c1, c2, w_start, w_end, v_max, state_path, context,
    )  # fmt: skip
    s = ledger.settings
    for i in range(s["particles"]):
        swarm.accept(i, ledger.call(swarm.scheme(i), swarm.row(0, i, None)))
    for t, w in enumerate(inertia_schedule(s["iterations"], s["w_start"], s["w_end"]),
                          start=1):
        for i in range(s["particles"]):
            r1, r2 = rng.random(2)
            swarm.move(i, w, r1, r2, s["c1"], s["c2"])
            swarm.accept(i, ledger.call(swarm.scheme(i), swarm.row(t, i, w)))
    return ledger.result()


def pso_sync(
    fitness: Callable[[Scheme], float],
    dims: int,
    low: float | Sequence[float] = 0,
    high: float | Sequence[float] = 48,
    particles: int = PAPER.particles,
    iterations: int = PAPER.iterations,
    seed: int = PAPER.seed,
    c1: float = PAPER.c1,
    c2: float = PAPER.c2,
    w_start: float = PAPER.w_start,
    w_end: float = PAPER.w_end,
    v_max: float = PAPER.v_max,
    state_path: str | os.PathLike | None = None,
    context: Any = None,
    executor: Executor | None = None,
) -> SearchResult:
    """Synchronous swarm (a deviation from the paper, for several GPUs).

    Each generation moves with the previous generation's gbest, then its distinct schemes
    not yet in the memo are evaluated together (through ``executor`` when given, else one
    after another); pbest/gbest are then updated in particle order. The result does not
    depend on the executor. Arguments as :func:`pso`; its state files are not interchangeable
    with :func:`pso`'s.
    """
    ledger, swarm, rng = _prepare(
        "pso_sync", fitness, dims, low, high, particles, iterations, seed,
        c1, c2, w_start, w_end, v_max, state_path, context,
    )  # fmt: skip
    s = ledger.settings
    _generation(ledger, swarm, 0, None, executor)
    for t, w in enumerate(inertia_schedule(s["iterations"], s["w_start"], s["w_end"]),
                          start=1):
        for i in range(s["particles"]):
            r1, r2 = rng.random(2)
            swarm.move(i, w, r1, r2, s["c1"], s["c2"])
        _generation(ledger, swarm, t, w, executor)
    return ledger.result()


def _generation(
    ledger: Ledger, swarm: _Swarm, iteration: int, w: float | None, executor: Executor | None
) -> None:
    schemes = [swarm.scheme(i) for i in range(len(swarm.x))]
    ledger.prefetch(schemes, executor)
    for i, scheme in enumerate(schemes):
        swarm.accept(i, ledger.call(scheme, swarm.row(iteration, i, w)))
