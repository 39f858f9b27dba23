import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from reporting_support import DEMO_PARAMS, demo_plan, write_demo_results

from amcf.io import write_json
from compendium.report.paper_inputs import write_paper_inputs

PAPER = Path(__file__).resolve().parents[1] / "paper"
# digits that are part of the method's notation or a method's name, not numbers to cite
ALLOWED = [r"\frac{1}{", r"\|_2", "c_1", "c_2", "k_1", "L2-SP"]
STRIPPED_ARGS = r"\\(?:input|includegraphics|ref|label|cite[pt]?|bibliography|bibliographystyle)"


def hand_typed_digits(tex: str) -> list[str]:
    """Lines of a LaTeX source that still hold digits once the allowed places are removed."""
    tex = re.sub(r"(?<!\\)%.*", "", tex)
    tex = re.sub(r"\\(?:documentclass|usepackage)(\[[^\]]*\])?\{[^}]*\}", "", tex)
    tex = re.sub(r"\\newcommand\{\\[A-Za-z]+\}(\[\d\])?", "", tex)  # definitions' arity
    tex = re.sub(r"#\d", "", tex)  # macro parameters
    tex = re.sub(STRIPPED_ARGS + r"\*?(\[[^\]]*\])?\{[^}]*\}", "", tex)
    tex = re.sub(r"\\begin\{(figure|table)\}\[[a-zA-Z!]*\]", "", tex)
    for allowed in ALLOWED:
        tex = tex.replace(allowed, "")
    return [line.strip() for line in tex.splitlines() if re.search(r"\d", line)]


def test_main_tex_has_no_hand_typed_numbers():
    assert hand_typed_digits((PAPER / "main.tex").read_text()) == []


def test_digit_check_catches_a_typed_number():
    assert hand_typed_digits(r"AMCF reaches 85.3\% on \texttt{\Profile}.") != []
    assert hand_typed_digits(r"with $\lambda = 0.2$") != []
    assert hand_typed_digits(r"\input{generated/tables/results-caltech256-30} % 3 seeds") == []


def test_main_tex_cites_profile_and_names_notebooks():
    tex = (PAPER / "main.tex").read_text()
    assert r"\texttt{\Profile}" in tex.split(r"\section{Setup}")[1]
    for figure in re.findall(r"\\begin\{figure\}.*?\\end\{figure\}", tex, re.S):
        assert r"\ReportNotebook" in figure


@pytest.fixture(scope="module")
def built_paper(tmp_path_factory):
    if shutil.which("latexmk") is None:
        pytest.skip("latexmk is not installed (apt-get install latexmk texlive-latex-recommended)")
    root = tmp_path_factory.mktemp("paper")
    results = write_demo_results(root / "results")
    paper = root / "paper"
    paper.mkdir()
    for name in ("main.tex", "references.bib"):
        shutil.copy(PAPER / name, paper / name)
    written = write_paper_inputs(results, paper, "test_profile & co", DEMO_PARAMS,
                                 plan=demo_plan())
    proc = subprocess.run(
        ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "main.tex"],
        cwd=paper, capture_output=True, text=True, timeout=120,
    )
    return paper, written, proc


def test_main_tex_compiles_with_generated_inputs(built_paper):
    paper, written, proc = built_paper
    log = (paper / "main.log").read_text(errors="replace")
    assert proc.returncode == 0, log[-3000:]
    assert (paper / "main.pdf").read_bytes().startswith(b"%PDF")
    assert "undefined" not in log.lower(), [ln for ln in log.splitlines() if "ndefined" in ln]
    # every figure and table the paper includes is one that write_paper_inputs wrote
    tex = (paper / "main.tex").read_text() + (paper / "generated/results-tables.tex").read_text()
    for path in re.findall(r"\\includegraphics(?:\[[^\]]*\])?\{([^}]*)\}", tex):
        assert (paper / f"{path}.pdf") in written.values()
    for path in re.findall(r"\\input\{([^}]*)\}", tex):
        assert (paper / f"{path}.tex") in written.values()


def test_generated_macros_define_every_macro_main_tex_uses(built_paper):
    paper, _, _ = built_paper
    generated = (paper / "generated/macros.tex").read_text() + (
        paper / "generated/claims.tex").read_text()
    defined = set(re.findall(r"\\newcommand\{\\([A-Za-z]+)\}", generated))
    used = set(re.findall(r"\\([A-Z][A-Za-z]+)", (paper / "main.tex").read_text())) - {"Delta"}
    assert used <= defined, used - defined
    macros = (paper / "generated/macros.tex").read_text()
    assert r"\newcommand{\Profile}{test\_profile \& co}" in macros


def test_schemes_table_reports_each_targets_search(tmp_path):
    from compendium.report.paper_inputs import schemes_table_latex

    for target, best, fit in (("a-t", [3, 0], 0.5), ("b", [1, 7], 0.25)):
        write_json(tmp_path / target / "search.json",
                   {"sources": ["x_y", "z"], "best": best, "best_fitness": fit, "calls": 60,
                    "evaluations": 41, "history": []})
    tex = schemes_table_latex(tmp_path, ["a-t", "b"])
    assert r"$k$ x\_y & $k$ z" in tex
    assert r"\texttt{a-t} & 0 & 3 & 0 & 50.0 & 60 & 41 \\" in tex
    assert r"\texttt{b} & 0 & 1 & 7 & 25.0 & 60 & 41 \\" in tex
    # one row per search seed once a target has several searches, in search_seeds' order
    write_json(tmp_path / "b" / "searches.json", {"searches": [
        {"seed": 1, "sources": ["x_y", "z"], "best": [5, 5], "best_fitness": 0.3, "calls": 60,
         "evaluations": 40},
        {"seed": 0, "sources": ["x_y", "z"], "best": [1, 7], "best_fitness": 0.25, "calls": 60,
         "evaluations": 41}]})
    tex = schemes_table_latex(tmp_path, ["b"])
    rows = [line for line in tex.splitlines() if line.startswith(r"\texttt{b}")]
    assert rows == [r"\texttt{b} & 1 & 5 & 5 & 30.0 & 60 & 40 \\",
                    r"\texttt{b} & 0 & 1 & 7 & 25.0 & 60 & 41 \\"]
    write_json(tmp_path / "c" / "search.json",
               {"sources": ["q"], "best": [2], "best_fitness": 0.1, "calls": 1, "evaluations": 1})
    with pytest.raises(ValueError, match="one source set"):
        schemes_table_latex(tmp_path, ["a-t", "c"])


def test_paper_inputs_repeat_byte_for_byte_and_read_the_pretrain_layer_tables(tmp_path):
    results = write_demo_results(tmp_path / "results", targets=["digits"], seeds=2)
    # the pipeline's layout: each pretrain stage writes sources/<name>/layers.json
    tables = json.loads((results / "layers.json").read_text())
    (results / "layers.json").unlink()
    for name, rows in tables.items():
        write_json(results / "sources" / name / "layers.json",
                   {"source": name, "arch": "amcf_resnet_tiny", "layers": rows})
    plan = demo_plan(["digits"])
    first = write_paper_inputs(results, tmp_path / "a", "embedded", DEMO_PARAMS, plan=plan)
    write_paper_inputs(results, tmp_path / "b", "embedded", DEMO_PARAMS, plan=plan)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*")
                   if p.is_file())
    assert len(files) > 15 and Path("figures/differences.pdf") in files
    for rel in files:  # tables, macros, figures (PDF and PNG) and the summary
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    summary = json.loads(first["summary"].read_text())
    assert summary["targets"] == ["digits"] and summary["runs"] == 2 * len(summary["methods"])
    # no layer tables at all: the error says where they come from
    shutil.rmtree(results / "sources" / "mnist")
    with pytest.raises(FileNotFoundError, match="run the pretrain stages"):
        write_paper_inputs(results, tmp_path / "c", "embedded", DEMO_PARAMS, plan=plan)


def test_per_class_caption_says_what_the_figure_draws(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from compendium.plots.curves import MAX_CONFUSION_CLASSES, plot_per_class_errors
    from compendium.report.paper_inputs import per_class_caption

    for classes in (5, MAX_CONFUSION_CLASSES + 20):
        labels = list(range(classes)) * 2
        pred = pd.DataFrame({"label": labels, "prediction": [(c + i % 2) % classes
                                                              for i, c in enumerate(labels)]})
        figure = plot_per_class_errors(pred)
        # the confusion matrix is an image on a second panel (beside its colour bar)
        drew_matrix = any(ax.images for ax in figure.axes)
        caption = per_class_caption(pred)
        assert ("confusion matrix." in caption) == drew_matrix, classes
        assert ("no confusion matrix is drawn" in caption) == (not drew_matrix), classes
        if not drew_matrix:
            assert f"its {classes} classes" in caption
