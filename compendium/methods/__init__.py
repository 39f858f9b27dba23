"""The method registry: one file per method, in its family's package (``baselines/``,
``ablations/``, ``proposed/``), each declaring its entry (:mod:`compendium.methods.entry`).
:mod:`compendium.methods.registry` reads every family; a stage reads only its own."""
