"""Figures of one run, one search, one dataset or one stage group, which the stages draw into
the results (and the report draws again for the paper). The report's own figures are in
:mod:`compendium.report.figures`. This ``__init__`` imports nothing."""
