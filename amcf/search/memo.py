"""Memo and state file of a search: one fitness value per scheme, persisted after every
evaluation so that a killed search can be resumed.

Resuming is a deterministic replay: the search runs again from its seed and every scheme
already in the state file's memo is looked up instead of evaluated. JSON writes floats as
their shortest repr, which reads back to the same float, so the replay takes exactly the
same decisions and ends exactly as an uninterrupted run. The settings are stored beside the
memo and a file written under other settings is refused: its values would answer a
different question.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, as_completed
from pathlib import Path
from typing import Any

from amcf.io import write_json
from amcf.search.result import SearchResult
from amcf.search.state import STATE_FORMAT, StateMismatchError, read_state
from amcf.search.validate import fitness_value, measured_details

Scheme = tuple[int, ...]


def _settings_diff(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    keys = sorted(set(stored) | set(current))
    return [
        f"{k}: file has {stored.get(k)!r}, this search has {current.get(k)!r}"
        for k in keys
        if stored.get(k) != current.get(k)
    ]


class Ledger:
    """Counts calls, answers repeats from the memo, records history and writes the state.

    ``seen`` holds the schemes called so far in this run, ``known`` every fitness value (this
    run's and the state file's): a scheme from the file is not "cached" on its first call in
    the replay, so the history of a resumed search equals that of an uninterrupted one.
    """

    def __init__(
        self,
        fitness: Callable[[Scheme], float],
        settings: dict[str, Any],
        total_calls: int,
        state_path: str | os.PathLike | None,
    ) -> None:
        self.fitness = fitness
        self.settings = settings
        self.total_calls = total_calls
        self.path = None if state_path is None else Path(state_path)
        self.known: dict[Scheme, float] = {}
        # what else each scheme's run measured (Measured.details), recorded beside its value
        self.details: dict[Scheme, dict[str, Any]] = {}
        self.seen: set[Scheme] = set()
        self.history: list[dict[str, Any]] = []
        self.best: Scheme | None = None
        self.best_fitness = float("-inf")
        if self.path is not None and self.path.exists():
            self._load()

    def _load(self) -> None:
        state = read_state(self.path)
        diff = _settings_diff(state.get("settings", {}), self.settings)
        if diff:
            raise StateMismatchError(
                f"search state {os.fspath(self.path)!r} was written by a search with other "
                "settings (" + "; ".join(diff) + "). Pass the original settings to resume it, "
                "or another state_path (or delete the file) to start a new search"
            )
        dims = self.settings["dims"]
        for entry in state.get("memo", []):
            scheme = tuple(int(k) for k in entry["scheme"])
            if len(scheme) != dims:
                raise ValueError(
                    f"search state {os.fspath(self.path)!r} holds scheme {scheme} with "
                    f"{len(scheme)} entries for a {dims}-dimensional search; delete the file"
                )
            self.known[scheme] = fitness_value(entry["fitness"], scheme)
            extra = {k: v for k, v in entry.items() if k not in ("scheme", "fitness")}
            if extra:
                self.details[scheme] = extra

    @property
    def calls(self) -> int:
        return len(self.history)

    @property
    def done(self) -> bool:
        return self.calls >= self.total_calls

    def record(self, scheme: Scheme, value: Any) -> float:
        """Store a freshly computed fitness and persist it at once."""
        details = measured_details(value)
        value = fitness_value(value, scheme)
        if details:
            self.details[scheme] = details
        self.known[scheme] = value
        self.save()
        return value

    def prefetch(self, schemes: Iterable[Scheme], executor: Executor | None) -> None:
        """Evaluate the distinct unknown schemes, in parallel when given an executor.

        Every value that arrives is persisted even when another evaluation fails, so a
        multi-GPU generation that dies midway loses only the evaluations that failed.
        """
        todo = list(dict.fromkeys(s for s in schemes if s not in self.known))
        if executor is None:
            for scheme in todo:
                self.record(scheme, self.fitness(scheme))
            return
        futures = {executor.submit(self.fitness, scheme): scheme for scheme in todo}
        error: Exception | None = None
        for future in as_completed(futures):
            try:
                value = future.result()
            except Exception as err:  # re-raised once the other values are saved
                error = error or err
                continue
            self.record(futures[future], value)
        if error is not None:
            raise error

    def call(self, scheme: Scheme, row: dict[str, Any]) -> float:
        """One fitness call: look the scheme up or evaluate it, then log the history row."""
        if self.done:
            raise RuntimeError(f"search exceeded its {self.total_calls} fitness calls")
        cached = scheme in self.seen
        if scheme not in self.known:
            self.record(scheme, self.fitness(scheme))
        value = self.known[scheme]
        self.seen.add(scheme)
        if value > self.best_fitness:
            self.best, self.best_fitness = scheme, value
        self.history.append(
            {
                "call": self.calls + 1,
                **row,
                "scheme": list(scheme),
                "fitness": value,
                **self.details.get(scheme, {}),
                "cached": cached,
                "best_fitness": self.best_fitness,
            }
        )
        return value

    def result(self) -> SearchResult:
        """The finished search's result, also written into the state file."""
        result = SearchResult(
            algorithm=self.settings["algorithm"],
            best=self.best,
            best_fitness=self.best_fitness,
            calls=self.calls,
            evaluations=len(self.seen),
            history=self.history,
            settings=self.settings,
        )
        self.save(result)
        return result

    def save(self, result: SearchResult | None = None) -> None:
        if self.path is None:
            return
        # Memo in first-call order, then values not yet called (prefetched or left over from
        # the file), so a finished search writes the same file however it was interrupted.
        order = [tuple(row["scheme"]) for row in self.history]
        order = list(dict.fromkeys(order + list(self.known)))
        state = {
            "format": STATE_FORMAT,
            "settings": self.settings,
            "total_calls": self.total_calls,
            "memo": [{"scheme": list(s), "fitness": self.known[s], **self.details.get(s, {})}
                     for s in order],
            "history": self.history,
            "result": None if result is None else result.to_dict(),
        }
        write_json(self.path, state)
