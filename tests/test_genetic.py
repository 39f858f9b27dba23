"""Genetic layer selection (the ALS baseline's search): budget, memo, resume, and that it
actually optimises."""

from __future__ import annotations

import math

import numpy as np
import pytest

from amcf.search.pso import pso
from amcf.search.result import SearchResult
from amcf.search.state import StateMismatchError, read_state
from compendium.methods.baselines._genetic import genetic_search


def bumpy(scheme):
    return math.cos(0.7 * scheme[0] * (len(scheme) + 1)) - 0.02 * sum(
        (k - 9) ** 2 for k in scheme
    )


class Counting:
    def __init__(self, fn=bumpy, die_after=None):
        self.fn, self.die_after, self.invoked = fn, die_after, []

    def __call__(self, scheme):
        assert isinstance(scheme, tuple) and all(type(k) is int for k in scheme)
        if self.die_after is not None and len(self.invoked) >= self.die_after:
            raise KeyboardInterrupt("simulated kill")
        self.invoked.append(scheme)
        return self.fn(scheme)


@pytest.mark.parametrize(("budget", "population"), [(1, 10), (7, 10), (60, 10), (95, 8)])
def test_exactly_budget_calls(budget, population):
    fitness = Counting()
    result = genetic_search(fitness, 2, 0, 20, budget=budget, population=population)
    assert result.calls == budget == len(result.history)
    assert [row["call"] for row in result.history] == list(range(1, budget + 1))
    assert len(fitness.invoked) == result.evaluations == len(set(fitness.invoked))
    assert result.evaluations == len({tuple(r["scheme"]) for r in result.history})
    initial = [r for r in result.history if r["generation"] == 0]
    assert len(initial) == min(budget, population)


def test_memo_marks_and_answers_repeats():
    fitness = Counting()
    result = genetic_search(fitness, 2, 0, 3, budget=60)
    assert result.evaluations < result.calls
    seen = set()
    for row in result.history:
        scheme = tuple(row["scheme"])
        assert row["cached"] == (scheme in seen)
        assert row["fitness"] == bumpy(scheme)
        seen.add(scheme)
    assert sorted(fitness.invoked) == sorted(seen)


def test_deterministic_for_a_seed_and_different_across_seeds():
    a = genetic_search(bumpy, 3, 0, 48, seed=2)
    b = genetic_search(bumpy, 3, 0, 48, seed=2)
    assert a.to_dict() == b.to_dict()
    c = genetic_search(bumpy, 3, 0, 48, seed=3)
    assert [r["scheme"] for r in a.history] != [r["scheme"] for r in c.history]


def test_best_is_the_first_call_with_the_highest_fitness():
    result = genetic_search(bumpy, 2, 0, 48, budget=40)
    top = max(r["fitness"] for r in result.history)
    first = next(r for r in result.history if r["fitness"] == top)
    assert result.best_fitness == top and result.best == tuple(first["scheme"])


def test_genomes_stay_in_per_dimension_bounds():
    low, high = [0, 3, 10], [2, 7, 48]
    result = genetic_search(bumpy, 3, low, high, budget=200, mutation_rate=1.0,
                            mutation_step=50)  # fmt: skip
    schemes = np.array([r["scheme"] for r in result.history])
    assert (schemes >= low).all() and (schemes <= high).all()
    # With steps far larger than the ranges the bounds themselves must be reached.
    assert (schemes == low).any(axis=0).all() and (schemes == high).any(axis=0).all()


@pytest.mark.parametrize("crossover", ["uniform", "one_point"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_finds_the_optimum_of_a_separable_fitness(crossover, seed):
    target = (3, 11, 7)

    def distance(scheme):
        return -sum(abs(k - t) for k, t in zip(scheme, target, strict=True))

    result = genetic_search(distance, 3, 0, 15, budget=200, seed=seed, crossover=crossover)
    # 16**3 = 4096 schemes: 200 random draws would hit the target about 5 % of the time.
    assert result.best == target and result.best_fitness == 0


def test_children_come_from_earlier_generations():
    result = genetic_search(bumpy, 2, 0, 48, budget=60, population=6, elite=2)
    generations = [r["generation"] for r in result.history]
    assert generations == sorted(generations)
    later = [r for r in result.history if r["generation"] > 0]
    assert all(r["parents"] is not None and len(r["parents"]) == 2 for r in later)
    assert all(0 <= p < 6 for r in later for p in r["parents"])
    # Two elites are carried over without a call, so a later generation has 4 calls.
    assert generations.count(1) == 4


def _parents_and_children(result):
    # elite=0: every individual of every generation is called, so the history holds them all.
    by_slot = {(r["generation"], r["individual"]): tuple(r["scheme"]) for r in result.history}
    for r in result.history:
        if r["generation"] > 0:
            a, b = (by_slot[(r["generation"] - 1, p)] for p in r["parents"])
            yield a, b, tuple(r["scheme"])


@pytest.mark.parametrize("crossover", ["uniform", "one_point"])
def test_crossover_mixes_the_parents_genes(crossover):
    result = genetic_search(bumpy, 4, 0, 48, budget=60, elite=0, crossover=crossover,
                            crossover_rate=1.0, mutation_rate=0.0)  # fmt: skip
    mixed = 0
    for a, b, child in _parents_and_children(result):
        if crossover == "uniform":
            assert all(c in (x, y) for c, x, y in zip(child, a, b, strict=True))
        else:
            assert any(child == a[:p] + b[p:] for p in range(1, 4))
        mixed += child not in (a, b)
    assert mixed > 0


def test_without_crossover_and_mutation_children_copy_a_parent():
    result = genetic_search(bumpy, 3, 0, 48, budget=40, elite=0, crossover_rate=0.0,
                            mutation_rate=0.0)  # fmt: skip
    assert all(child == a for a, _, child in _parents_and_children(result))


def test_mutation_moves_genes_by_at_most_the_step():
    result = genetic_search(bumpy, 3, 0, 48, budget=60, elite=0, crossover_rate=0.0,
                            mutation_rate=1.0, mutation_step=2)  # fmt: skip
    steps = [abs(c - x) for a, _, child in _parents_and_children(result)
             for c, x in zip(child, a, strict=True)]  # fmt: skip
    assert max(steps) == 2 and min(steps) == 0


def test_kill_and_resume_ends_exactly_as_uninterrupted(tmp_path):
    path = tmp_path / "als.json"
    context = {"dataset": "digits", "sources": ["mnist", "animals"]}
    whole = genetic_search(bumpy, 2, 0, 48, budget=60, seed=5, context=context)

    first = Counting(die_after=17)
    with pytest.raises(KeyboardInterrupt):
        genetic_search(first, 2, 0, 48, budget=60, seed=5, state_path=path, context=context)
    assert [tuple(e["scheme"]) for e in read_state(path)["memo"]] == first.invoked

    second = Counting()
    resumed = genetic_search(second, 2, 0, 48, budget=60, seed=5, state_path=path,
                             context=context)  # fmt: skip
    assert resumed.to_dict() == whole.to_dict()
    assert not set(first.invoked) & set(second.invoked)
    assert len(first.invoked) + len(second.invoked) == whole.evaluations
    assert SearchResult.from_state(path) == whole


def test_state_with_other_settings_or_algorithm_is_refused(tmp_path):
    path = tmp_path / "als.json"
    with pytest.raises(KeyboardInterrupt):
        genetic_search(Counting(die_after=5), 2, 0, 48, state_path=path)
    fitness = Counting()
    with pytest.raises(StateMismatchError, match="budget: file has 60, this search has 80"):
        genetic_search(fitness, 2, 0, 48, budget=80, state_path=path)
    with pytest.raises(StateMismatchError, match="algorithm"):
        pso(fitness, 2, state_path=path)
    assert fitness.invoked == []


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"budget": 0}, ValueError, "budget must be >= 1"),
        ({"population": 1}, ValueError, "population must be >= 2"),
        ({"elite": 10}, ValueError, "elite .* must be smaller than population"),
        ({"tournament": 0}, ValueError, "tournament must be >= 1"),
        ({"crossover": "two_point"}, ValueError, "crossover must be one of"),
        ({"crossover_rate": 1.5}, ValueError, "crossover_rate"),
        ({"mutation_rate": -0.1}, ValueError, "mutation_rate"),
        ({"mutation_step": 0}, ValueError, "mutation_step must be >= 1"),
        ({"mutation_step": [1, 2, 3]}, ValueError, "mutation_step has 3 entries"),
        ({"low": 0.5}, ValueError, "whole numbers"),
        ({"low": 48}, ValueError, "low must be < high"),
        ({"dims": 0}, ValueError, "dims must be >= 1"),
    ],
)
def test_bad_arguments_fail_before_any_fitness_call(kwargs, error, match):
    fitness = Counting()
    args = {"fitness": fitness, "dims": 2, "low": 0, "high": 48, **kwargs}
    with pytest.raises(error, match=match):
        genetic_search(**args)
    assert fitness.invoked == []
