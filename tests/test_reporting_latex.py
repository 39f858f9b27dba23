import math

import pytest

from compendium.report.latex import escape_latex, fmt_num, fmt_p, fmt_pct, fmt_pm, fmt_signed_pct


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("finetune_mnist", r"finetune\_mnist"),
        ("50% & $5 #1", r"50\% \& \$5 \#1"),
        ("{a}", r"\{a\}"),
        ("a~b^c", r"a\textasciitilde{}b\textasciicircum{}c"),
        ("C:\\path", r"C:\textbackslash{}path"),
        ("x<y>z", r"x\textless{}y\textgreater{}z"),
        ("plain text", "plain text"),
    ],
)
def test_escape_latex(raw, escaped):
    assert escape_latex(raw) == escaped


def test_escape_latex_does_not_double_escape_its_own_output():
    # a backslash escape must not have its braces escaped again
    assert escape_latex("\\{") == r"\textbackslash{}\{"


def test_number_formats():
    assert fmt_pct(0.8123) == "81.2"
    assert fmt_pm(0.8, 0.0125) == r"80.0 $\pm$ 1.2"  # 1.25 rounds half to even
    assert fmt_pm(0.8, math.nan) == r"80.0 $\pm$ --"
    assert fmt_signed_pct(0.013) == "+1.3" and fmt_signed_pct(-0.004) == "-0.4"
    assert fmt_p(0.0004) == "$<$0.001" and fmt_p(0.0456) == "0.046" and fmt_p(math.nan) == "--"
    assert fmt_num(12345) == "12{,}345" and fmt_num(None) == "--"
