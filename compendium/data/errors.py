"""The one exception type of the data layer.

Every message names the file or dataset at fault, what was expected, and how to fix it, so a
bad input stops the pipeline before any training starts.
"""

from __future__ import annotations


class DataError(RuntimeError):
    """A dataset cannot be fetched, verified, decoded or split as asked."""
