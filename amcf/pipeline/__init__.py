"""Glue between the DVC pipeline and the notebooks: run a notebook as a stage."""
