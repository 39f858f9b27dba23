"""One registry of every dataset amcf knows: name -> :class:`DatasetInfo`.

Each dataset module registers its own entry when :mod:`compendium.data.catalog` imports it; the
registry itself knows nothing about any particular dataset.
"""

from __future__ import annotations

import difflib

from compendium.data.errors import DataError
from compendium.data.info import REGISTRY, DatasetInfo, Profile, Role, register  # noqa: F401


def _all() -> dict[str, DatasetInfo]:
    import compendium.data.catalog  # noqa: F401  (registers every dataset module)

    return REGISTRY


def get_info(name: str) -> DatasetInfo:
    """The registry entry for ``name``; an unknown name lists the closest known ones."""
    known = _all()
    if name in known:
        return known[name]
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise DataError(f"unknown dataset {name!r}.{hint} Known datasets: {', '.join(sorted(known))}"
                    " (`amcf data list` shows them). A folder of your own images is an entry of "
                    f"params.yaml: `datasets: {{{name}: {{folder: {{path: DIR}}}}}}` (README, "
                    "\"Your own data\").")


def names(profile: Profile | None = None) -> list[str]:
    """Registered names, in registration order, optionally of one profile."""
    return [n for n, i in _all().items() if profile is None or i.profile == profile]
