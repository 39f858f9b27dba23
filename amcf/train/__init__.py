"""The trainer shared by AMCF, its ablations and every baseline (:func:`amcf.train.fit.fit`).

Import from the module that defines a name (``amcf.train.fit``, ``amcf.search.pso``...): this
``__init__`` imports nothing, so a module of the package loads only what it needs."""
