"""The ablations of AMCF: one file per method; found by
:func:`compendium.methods.entry.discover`; this ``__init__`` imports nothing."""
