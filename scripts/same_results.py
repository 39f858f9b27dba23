"""Compare two runs' result files, byte for byte apart from wall-clock timings.

``python -m scripts.same_results REFERENCE OTHER [PATTERN ...]`` compares the JSON and
CSV files matching the glob patterns (relative to both folders; default: every ``*.json``
and ``*.csv`` under ``results/``) and prints each difference. JSON keys and CSV columns named
in :data:`TIMINGS` are dropped first, everything else must be equal as text; a file present
in one run only is a difference too. Exit status 1 when anything differs.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TIMINGS = frozenset({"wall_time_s", "seconds"})
DEFAULT_PATTERNS = ("results/**/*.json", "results/**/*.csv")


def _drop_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_timings(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [_drop_timings(v) for v in value]
    return value


def comparable_text(path: Path, text: str | None = None) -> str:
    """The file's text without its timings (JSON re-serialised as written, CSV re-joined);
    ``text`` stands in for the file's content (e.g. a committed version from ``git show``)."""
    text = path.read_text(encoding="utf-8") if text is None else text
    if path.suffix == ".json":
        return json.dumps(_drop_timings(json.loads(text)), indent=2)
    if path.suffix == ".csv":
        rows = list(csv.reader(io.StringIO(text)))
        keep = [i for i, name in enumerate(rows[0] if rows else []) if name not in TIMINGS]
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([[r[i] for i in keep] for r in rows])
        return out.getvalue()
    return text


def differences(reference: str | Path, other: str | Path,
                patterns: Sequence[str] = DEFAULT_PATTERNS) -> list[str]:
    """Every difference between the two folders' files matching ``patterns``."""
    reference, other = Path(reference), Path(other)
    names: set[str] = set()
    for root in (reference, other):
        for pattern in patterns:
            names |= {p.relative_to(root).as_posix() for p in root.glob(pattern) if p.is_file()}
    if not names:
        return [f"no file matches {list(patterns)} in {reference} or {other}"]
    problems = []
    for name in sorted(names):
        a, b = reference / name, other / name
        if not a.exists() or not b.exists():
            problems.append(f"{name}: only in {reference if a.exists() else other}")
        elif comparable_text(a) != comparable_text(b):
            problems.append(f"{name}: differs")
    return problems


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    reference, other, patterns = argv[0], argv[1], argv[2:] or DEFAULT_PATTERNS
    problems = differences(reference, other, patterns)
    for problem in problems:
        print(problem)
    count = len({n for p in patterns for n in Path(reference).glob(p)})
    print(f"{len(problems)} differences in {count} files of {reference} against {other}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
