"""A search's state file: its format, reading it back, and the refusal of a file written
under other settings. The memo (:mod:`amcf.search.memo`) writes it; a finished search's
result (:mod:`amcf.search.result`) reads it back."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from amcf.io import read_json

STATE_FORMAT = "amcf-search-state/1"


class StateMismatchError(ValueError):
    """A state file exists but was written by a search with other settings."""


def read_state(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    try:
        state = read_json(path)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"search state {os.fspath(path)!r} is not valid JSON ({err}); delete it to start "
            "the search afresh"
        ) from err
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ValueError(
            f"{os.fspath(path)!r} is not an amcf search state file (expected format "
            f"{STATE_FORMAT!r}); pass another state_path or delete the file"
        )
    return state
