"""The search for the freezing scheme: the paper's particle swarm (AMLS) and a synchronous
swarm for several GPUs, with one result type, a memo (a repeated scheme is looked up, never
re-evaluated) and a resumable state file.

Import from the module that defines a name (``amcf.train.fit``, ``amcf.search.pso``...): this
``__init__`` imports nothing, so a module of the package loads only what it needs."""
