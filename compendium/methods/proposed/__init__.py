"""AMCF itself, and amcf-select published from the same training; found by
:func:`compendium.methods.entry.discover`; this ``__init__`` imports nothing."""
