"""LaTeX text helpers: escaping and the number formats every table and macro share."""

from __future__ import annotations

import re

import pandas as pd

_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}
_SPECIAL = re.compile("|".join(re.escape(c) for c in _ESCAPES))
DASH = "--"  # shown where a number does not exist (no test, no reference, no search)


def escape_latex(text: object) -> str:
    """Text made safe for LaTeX's text mode (all ten special characters, plus < and >)."""
    return _SPECIAL.sub(lambda m: _ESCAPES[m.group(0)], str(text))


def _missing(value: float | None) -> bool:
    return value is None or bool(pd.isna(value))


def fmt_pct(value: float | None, digits: int = 1) -> str:
    """An accuracy fraction as a percentage, e.g. 0.8123 -> '81.2'."""
    return DASH if _missing(value) else f"{100 * value:.{digits}f}"


def fmt_pm(mean: float, std: float, digits: int = 1) -> str:
    """'mean $\\pm$ std' in percent; the spread is a dash when one seed gives none, the whole
    cell one when there is no mean."""
    if _missing(mean):
        return DASH
    return f"{fmt_pct(mean, digits)} $\\pm$ {fmt_pct(std, digits)}"


def fmt_signed_pct(value: float | None, digits: int = 1) -> str:
    """A difference of fractions in percentage points with its sign, e.g. '+1.3', '-0.4'."""
    return DASH if _missing(value) else f"{100 * value:+.{digits}f}"


def fmt_p(value: float | None) -> str:
    """A p-value: three decimals, or '< 0.001'."""
    if _missing(value):
        return DASH
    return "$<$0.001" if value < 0.001 else f"{value:.3f}"


def fmt_num(value: float | None, digits: int = 0) -> str:
    """A plain number with thousands separators (cost columns)."""
    return DASH if _missing(value) else f"{value:,.{digits}f}".replace(",", "{,}")
