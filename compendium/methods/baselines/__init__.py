"""The baselines: one file per method (its entry, recipe and mechanism); ``_`` files are
helpers. Found by :func:`compendium.methods.entry.discover`; this ``__init__`` imports nothing."""
