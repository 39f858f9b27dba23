"""The AMLS swarm against an independent, literal reading of the method spec's PSO."""

from __future__ import annotations

import json
import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from amcf.search.pso import inertia_schedule, pso, pso_sync
from amcf.search.result import SearchResult
from amcf.search.state import StateMismatchError, read_state


def rugged(scheme):
    """Cheap, deterministic, many local optima, values with full float precision."""
    return math.sin(0.37 * sum((j + 1) * k for j, k in enumerate(scheme))) - 0.01 * sum(
        (k - 21) ** 2 for k in scheme
    )


class Counting:
    """Fitness that records every invocation and can die after a number of them."""

    def __init__(self, fn=rugged, die_after=None):
        self.fn, self.die_after = fn, die_after
        self.invoked = []
        self.lock = threading.Lock()

    def __call__(self, scheme):
        assert isinstance(scheme, tuple) and all(type(k) is int for k in scheme)
        with self.lock:
            if self.die_after is not None and len(self.invoked) >= self.die_after:
                raise KeyboardInterrupt("simulated kill")
            self.invoked.append(scheme)
        return self.fn(scheme)


def reference_pso(fitness, dims, low=0.0, high=48.0, particles=10, iterations=5, seed=0,
                  c1=1.5, c2=1.5, w_start=1.4, w_end=0.7, v_max=5.0, sync=False):  # fmt: skip
    """The spec's loop with plain Python floats; every call evaluates (no memo).

    Draw order (from amcf.search.pso's docstring): positions particle by particle, dimension
    by dimension; then velocities likewise; then r1, r2 per particle per iteration.
    ``sync`` moves the whole swarm first and evaluates it afterwards (pso_sync's deviation).
    """
    rng = np.random.default_rng(seed)
    x = [[rng.uniform(low, high) for _ in range(dims)] for _ in range(particles)]
    v = [[rng.uniform(-v_max, v_max) for _ in range(dims)] for _ in range(particles)]
    pbest = [list(p) for p in x]
    pfit = [-math.inf] * particles
    g = {"pos": None, "fit": -math.inf}
    calls = []

    def evaluate(i, iteration, w):
        scheme = tuple(int(p) for p in x[i])
        value = fitness(scheme)
        calls.append((iteration, i, w, list(x[i]), list(v[i]), scheme, value))
        if value > pfit[i]:
            pbest[i], pfit[i] = list(x[i]), value
        if value > g["fit"]:
            g["pos"], g["fit"] = list(x[i]), value

    def move(i, w):
        r1 = rng.random()
        r2 = rng.random()
        for j in range(dims):
            vel = w * v[i][j] + c1 * r1 * (pbest[i][j] - x[i][j]) + c2 * r2 * (
                g["pos"][j] - x[i][j]
            )
            v[i][j] = min(max(vel, -v_max), v_max)
            x[i][j] = min(max(x[i][j] + v[i][j], low), high)

    for i in range(particles):
        evaluate(i, 0, None)
    w = w_start
    for t in range(1, iterations + 1):
        for i in range(particles):
            move(i, w)
            if not sync:
                evaluate(i, t, w)
        if sync:
            for i in range(particles):
                evaluate(i, t, w)
        w = w - (w_start - w_end) / iterations
    return calls


def assert_matches_reference(result, calls):
    assert result.calls == len(calls) == len(result.history)
    for row, (iteration, i, w, pos, vel, scheme, value) in zip(result.history, calls, strict=True):
        assert (row["iteration"], row["particle"], row["inertia"]) == (iteration, i, w)
        assert row["position"] == pos
        assert row["velocity"] == vel
        assert tuple(row["scheme"]) == scheme
        assert row["fitness"] == value
    best = max(c[6] for c in calls)
    assert result.best_fitness == best
    assert result.best == next(c[5] for c in calls if c[6] == best)


@pytest.mark.parametrize(
    ("dims", "seed", "kwargs"),
    [
        (2, 0, {}),
        (1, 3, {}),
        (3, 7, {"particles": 6, "iterations": 4, "v_max": 9.0, "c1": 2.0, "c2": 1.0}),
        (2, 11, {"low": 0.0, "high": 11.0, "w_start": 0.9, "w_end": 0.4}),
    ],
)
def test_pso_follows_the_spec_call_by_call(dims, seed, kwargs):
    result = pso(rugged, dims, seed=seed, **kwargs)
    assert_matches_reference(result, reference_pso(rugged, dims, seed=seed, **kwargs))


@pytest.mark.parametrize(("dims", "seed"), [(2, 1), (3, 5)])
def test_pso_sync_follows_the_synchronous_reference(dims, seed):
    result = pso_sync(rugged, dims, seed=seed)
    assert_matches_reference(result, reference_pso(rugged, dims, seed=seed, sync=True))
    # The gbest timing is the only difference; for these seeds a gbest found mid-iteration
    # changes the later particles' moves.
    assert result.history != pso(rugged, dims, seed=seed).history


def test_defaults_make_sixty_calls_in_six_rounds():
    fitness = Counting()
    result = pso(fitness, 2)
    assert result.calls == 60 == len(result.history)
    rounds = [row["iteration"] for row in result.history]
    assert rounds == [t for t in range(6) for _ in range(10)]
    assert [row["particle"] for row in result.history] == list(range(10)) * 6
    assert len(fitness.invoked) == result.evaluations == len(set(fitness.invoked))


def test_inertia_schedule():
    expected = [1.4, 1.26, 1.12, 0.98, 0.84]
    assert inertia_schedule() == pytest.approx(expected, abs=1e-12)
    result = pso(rugged, 2)
    used = {row["iteration"]: row["inertia"] for row in result.history}
    assert used[0] is None
    assert [used[t] for t in range(1, 6)] == pytest.approx(expected, abs=1e-12)


def test_same_seed_same_search_other_seed_other_search():
    a, b = pso(rugged, 2, seed=4), pso(rugged, 2, seed=4)
    assert a.to_dict() == b.to_dict()
    c = pso(rugged, 2, seed=5)
    assert [r["position"] for r in a.history] != [r["position"] for r in c.history]


def test_global_rng_is_neither_used_nor_disturbed():
    # The legacy global generator is exactly what must stay untouched.
    np.random.seed(123)  # noqa: NPY002
    before = np.random.random(3)  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    pso(rugged, 2)
    assert np.array_equal(np.random.random(3), before)  # noqa: NPY002


def test_memo_looks_repeated_schemes_up():
    # Only 3 x 3 schemes exist, so 60 calls must repeat.
    fitness = Counting()
    result = pso(fitness, 2, low=0, high=2.999, v_max=1.0)
    schemes = [tuple(row["scheme"]) for row in result.history]
    assert len(fitness.invoked) == result.evaluations == len(set(schemes)) < result.calls == 60
    assert sorted(fitness.invoked) == sorted(set(schemes))
    seen = set()
    for row, scheme in zip(result.history, schemes, strict=True):
        assert row["cached"] == (scheme in seen)
        assert row["fitness"] == rugged(scheme)
        seen.add(scheme)
    # The memo changes nothing but the cost.
    assert_matches_reference(result, reference_pso(rugged, 2, low=0, high=2.999, v_max=1.0))


def test_bounds_are_respected_per_dimension():
    low, high = [0, 2, 5], [3, 10, 48]
    result = pso(rugged, 3, low=low, high=high, v_max=100.0, c1=3.0, c2=3.0)
    positions = np.array([row["position"] for row in result.history])
    schemes = np.array([row["scheme"] for row in result.history])
    velocities = np.array([row["velocity"] for row in result.history])
    assert (positions >= low).all() and (positions <= high).all()
    assert (schemes >= low).all() and (schemes <= high).all()
    assert (np.abs(velocities) <= 100.0).all()
    # Large steps must have been clipped to the bounds, or the test proves nothing.
    assert (positions == high).any() and (positions == low).any()
    clipped = pso(rugged, 2, c1=3.0, c2=3.0, v_max=2.0)
    assert max(abs(v) for row in clipped.history for v in row["velocity"]) == 2.0


def test_kill_and_resume_ends_exactly_as_uninterrupted(tmp_path):
    path = tmp_path / "search" / "state.json"
    whole = pso(rugged, 2, seed=1, context={"dataset": "digits"})

    first = Counting(die_after=23)
    with pytest.raises(KeyboardInterrupt):
        pso(first, 2, seed=1, state_path=path, context={"dataset": "digits"})
    state = read_state(path)
    assert state["result"] is None
    assert [tuple(e["scheme"]) for e in state["memo"]] == first.invoked
    assert len(first.invoked) == 23

    second = Counting()
    resumed = pso(second, 2, seed=1, state_path=path, context={"dataset": "digits"})
    assert resumed.to_dict() == whole.to_dict()
    assert not set(second.invoked) & set(first.invoked)
    assert len(first.invoked) + len(second.invoked) == whole.evaluations
    # The state file holds the finished result, and a rerun makes no fitness call at all.
    assert SearchResult.from_state(path) == whole
    third = Counting()
    assert pso(third, 2, seed=1, state_path=path, context={"dataset": "digits"}) == whole
    assert third.invoked == []


def test_resume_restores_floats_exactly(tmp_path):
    # Values that a lossy float format would change in the last digit.
    def fitness(scheme):
        return math.sqrt(2) * rugged(scheme) + 1e-17 * scheme[0]

    path = tmp_path / "state.json"
    with pytest.raises(KeyboardInterrupt):
        pso(Counting(fitness, die_after=30), 2, state_path=path)
    memo = {tuple(e["scheme"]): e["fitness"] for e in read_state(path)["memo"]}
    assert all(value == fitness(scheme) for scheme, value in memo.items())
    assert pso(fitness, 2, state_path=path).to_dict() == pso(fitness, 2).to_dict()


def test_unfinished_state_has_no_result(tmp_path):
    path = tmp_path / "state.json"
    with pytest.raises(KeyboardInterrupt):
        pso(Counting(die_after=5), 2, state_path=path)
    with pytest.raises(ValueError, match="unfinished.*resume"):
        SearchResult.from_state(path)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"context": {"dataset": "omniglot"}}, "context"),
        ({"seed": 1}, "seed"),
        ({"high": 40}, "high"),
        ({"particles": 8}, "particles"),
        ({"c1": 2.0}, "c1"),
    ],
)
def test_state_written_under_other_settings_is_refused(tmp_path, change, key):
    path = tmp_path / "state.json"
    settings = {"seed": 0, "context": {"dataset": "digits"}}
    with pytest.raises(KeyboardInterrupt):
        pso(Counting(die_after=12), 2, state_path=path, **settings)
    fitness = Counting()
    with pytest.raises(StateMismatchError, match=f"{key}: file has .*state_path"):
        pso(fitness, 2, state_path=path, **{**settings, **change})
    assert fitness.invoked == []


def test_state_of_the_other_swarm_is_refused(tmp_path):
    path = tmp_path / "state.json"
    pso(rugged, 1, particles=2, iterations=1, state_path=path)
    with pytest.raises(StateMismatchError, match="algorithm"):
        pso_sync(rugged, 1, particles=2, iterations=1, state_path=path)


def test_corrupt_state_file_is_refused(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON.*delete"):
        pso(rugged, 2, state_path=path)
    path.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="not an amcf search state"):
        pso(rugged, 2, state_path=path)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"dims": 0}, ValueError, "dims must be >= 1"),
        ({"dims": 2.0}, TypeError, "dims must be an integer"),
        ({"low": 10, "high": 10}, ValueError, "low must be < high"),
        ({"low": [0, 0, 0]}, ValueError, "low has 3 entries but dims is 2"),
        ({"high": float("inf")}, ValueError, "high"),
        ({"particles": 0}, ValueError, "particles must be >= 1"),
        ({"iterations": 0}, ValueError, "iterations must be >= 1"),
        ({"seed": -1}, ValueError, "seed must be >= 0"),
        ({"v_max": 0.0}, ValueError, "v_max must be > 0"),
        ({"c1": -1.0}, ValueError, "c1"),
        ({"context": {"f": object()}}, TypeError, "context must be JSON-serialisable"),
        ({"fitness": "accuracy"}, TypeError, "fitness must be a callable"),
    ],
)
def test_bad_arguments_fail_before_any_fitness_call(kwargs, error, match):
    fitness = Counting()
    args = {"fitness": fitness, "dims": 2, **kwargs}
    with pytest.raises(error, match=match):
        pso(**args)
    assert fitness.invoked == []


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "0.5", None])
def test_fitness_must_return_a_finite_number(bad):
    with pytest.raises((ValueError, TypeError), match=r"fitness\(.*returned"):
        pso(lambda scheme: bad, 2)


def test_pso_sync_through_an_executor_equals_sequential(tmp_path):
    sequential = pso_sync(rugged, 3, seed=2)
    fitness = Counting()
    with ThreadPoolExecutor(max_workers=3) as pool:
        parallel = pso_sync(fitness, 3, seed=2, executor=pool, state_path=tmp_path / "s.json")
    assert parallel.to_dict() == sequential.to_dict()
    assert sorted(fitness.invoked) == sorted(set(fitness.invoked))
    assert len(fitness.invoked) == parallel.evaluations


def test_pso_sync_generation_is_submitted_together():
    # Every distinct scheme of the initial generation must be in flight at once: each
    # evaluation waits until all of them have started.
    initial = {tuple(r["scheme"]) for r in pso_sync(rugged, 2, seed=6).history[:10]}
    barrier = threading.Barrier(len(initial), timeout=10)

    def fitness(scheme):
        if scheme in initial:
            barrier.wait()
        return rugged(scheme)

    with ThreadPoolExecutor(max_workers=10) as pool:
        result = pso_sync(fitness, 2, seed=6, executor=pool)
    assert result.to_dict() == pso_sync(rugged, 2, seed=6).to_dict()
    assert len(initial) > 1


def test_pso_sync_keeps_finished_work_when_one_evaluation_fails(tmp_path):
    path = tmp_path / "state.json"
    whole = pso_sync(rugged, 2, seed=3)
    doomed = tuple(whole.history[4]["scheme"])

    def failing(scheme):
        if scheme == doomed:
            raise RuntimeError("GPU lost")
        return rugged(scheme)

    with ThreadPoolExecutor(max_workers=2) as pool, pytest.raises(RuntimeError, match="GPU"):
        pso_sync(failing, 2, seed=3, executor=pool, state_path=path)
    saved = {tuple(e["scheme"]) for e in read_state(path)["memo"]}
    initial = {tuple(r["scheme"]) for r in whole.history[:10]}
    assert saved == initial - {doomed}
    fitness = Counting()
    assert pso_sync(fitness, 2, seed=3, state_path=path).to_dict() == whole.to_dict()
    assert doomed in fitness.invoked and not saved & set(fitness.invoked)
