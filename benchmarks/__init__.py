"""Benchmarks run from a checkout (no part of the packages): speed against the authors' loop,
numerics across kernels, chaos, the GPU check."""
