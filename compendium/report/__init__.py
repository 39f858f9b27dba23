"""The reporting: the results tree collected into one table (:mod:`.collect`), statistics
over seeds (:mod:`.stats`), tables, macros, claims, the fitness study, the deviations table
and the paper's figures, and :func:`compendium.report.paper_inputs.write_paper_inputs`, which writes
every generated input of ``paper/main.tex``. Only the report stage imports it; this
``__init__`` imports nothing."""
