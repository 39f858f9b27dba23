"""LaTeX macros for every number the paper's text cites, so no number is typed by hand.

Names are letters only (TeX control words):
``macro_name("omniglot-small", "amcf", "TestAcc")`` is ``AmcfOmniglotSmallTestAcc``; digits are
spelled out (``amcf-lam0.5`` -> ``AmcfLamZeroPointFive``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, create_model

from amcf.io import write_text
from amcf.search.settings import SwarmSettings
from amcf.train.config import FitnessConfig, TrainConfig
from compendium.report.latex import DASH, escape_latex, fmt_p, fmt_pct, fmt_pm, fmt_signed_pct
from compendium.report.stats import ALPHA
from compendium.report.tables import results_table

_DIGITS = ("Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine")
_TOKEN = re.compile(r"[A-Za-z]+|\d|\.(?=\d)")


def _camel(part: str) -> str:
    words = []
    for tok in _TOKEN.findall(part):
        if tok.isdigit():
            words.append(_DIGITS[int(tok)])
        elif tok == ".":
            words.append("Point")
        else:
            words.append(tok[0].upper() + tok[1:])
    return "".join(words)


def macro_name(target: str | None, method: str | None, quantity: str) -> str:
    """The macro name (without backslash) for ``quantity`` of ``method`` on ``target``.

    Order: method, target, quantity; either of the first two may be None for aggregates.
    """
    if not _camel(quantity):
        raise ValueError(f"quantity {quantity!r} has no letters; give it a name like 'TestAcc'")
    return "".join(_camel(p) for p in (method, target, quantity) if p)


# The settings the paper cites, named as in their schemas: the swarm's
# (amcf.search.settings.SwarmSettings) and the final recipe's (amcf.train.config.TrainConfig).
CITED_SWARM = ("particles", "iterations", "w_start", "w_end", "c1", "c2", "v_max")
CITED_RECIPE = ("epochs", "batch_size", "lr", "momentum", "weight_decay", "step_size", "gamma")


class _Cited(BaseModel):
    """What the paper's text cites beyond the two schemas' settings."""

    model_config = ConfigDict(extra="forbid")
    sources: list[str] = Field(min_length=1)
    source_arch: str
    # how many times each source was pretrained (amcf.sources' weights: one per draw)
    source_draws: int = Field(1, ge=1)
    image_size: int = Field(gt=0)
    lam: float = Field(ge=0)
    search_epochs: int = Field(gt=0)


# one flat model: each cited setting keeps its schema's type, default and bounds
PaperParams = create_model(
    "PaperParams", __base__=_Cited, __module__=__name__,
    __doc__="The settings the paper's text cites (filled by the report stage from params.yaml).",
    **{name: (SwarmSettings.model_fields[name].annotation, SwarmSettings.model_fields[name])
       for name in CITED_SWARM},
    **{name: (TrainConfig.model_fields[name].annotation, TrainConfig.model_fields[name])
       for name in CITED_RECIPE},
)


def paper_params(sources: Mapping[str, Mapping], lam: float, pso: Mapping, fitness: Mapping,
                 train: Mapping, image_size: int) -> BaseModel:
    """The cited settings from the pipeline's sections as the report stage receives them
    (``amcf.sources``, ``search.pso``, ``search.fitness``, ``final.train``); a setting a
    section leaves out is the swarm's or the recipe's default, as in the runs."""
    swarm, recipe = SwarmSettings(**pso), TrainConfig(**train)
    return PaperParams(
        sources=list(sources), source_arch=", ".join(sorted({s["arch"] for s in
                                                             sources.values()})),
        source_draws=max((len(s["weights"]) for s in sources.values()
                          if isinstance(s.get("weights"), list | tuple)), default=1),
        image_size=image_size, lam=lam, search_epochs=FitnessConfig(**fitness).epochs,
        **{name: getattr(swarm, name) for name in CITED_SWARM},
        **{name: getattr(recipe, name) for name in CITED_RECIPE})


PaperParams.from_settings = staticmethod(paper_params)


def fmt_param(value: object) -> str:
    """A setting as TeX text: ints as ints, floats shortest-exact, tiny ones as a x 10^b."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return escape_latex(value)
    if isinstance(value, int):
        return str(value)
    text = f"{value:g}"
    if "e" in text:
        mant, exp = text.split("e")
        return f"\\ensuremath{{{mant}\\times 10^{{{int(exp)}}}}}"
    return text


def param_macros(params: PaperParams | Mapping) -> dict[str, str]:
    """``\\Param<Name>`` for each setting, plus the source list and K."""
    p = params if isinstance(params, PaperParams) else PaperParams.model_validate(dict(params))
    out = {macro_name(None, "param", k): fmt_param(v)
           for k, v in p.model_dump().items() if k != "sources"}
    out["ParamSources"] = ", ".join(f"\\texttt{{{escape_latex(s)}}}" for s in p.sources)
    out["ParamNumSources"] = str(len(p.sources))
    return out


def _put(macros: dict[str, str], name: str, value: str, origin: str) -> None:
    if name in macros:
        raise ValueError(
            f"macro \\{name} ({origin}) is already defined: two targets or methods differ only in "
            "punctuation or case; rename one of them"
        )
    macros[name] = value


def result_macros(frame: pd.DataFrame, candidates: Sequence[str] | None = None, *,
                  alpha: float = ALPHA) -> dict[str, str]:
    """Per (target, method) numbers, per-target reference, and the aggregates the text cites;
    ``alpha`` is the analysis plan's (the report passes it), which ``\\SignificanceLevel``
    states and ``\\AmcfTargetsSignificant`` counts with."""
    out: dict[str, str] = {}
    amcf_deltas, amcf_above, amcf_sig, compared = [], 0, 0, 0
    for target in sorted(frame["target"].unique()):
        table = results_table(frame, target, candidates)
        ref = table["reference"].iloc[0]
        ref_label = table.loc[table.method == ref, "label"].iloc[0] if ref else "none"
        _put(out, macro_name(target, None, "Reference"), escape_latex(ref_label), target)
        for r in table.itertuples(index=False):
            values = {
                "TestAcc": fmt_pct(r.test_mean),
                "TestAccStd": fmt_pct(r.test_std),
                "TestAccPm": fmt_pm(r.test_mean, r.test_std),
                "BestTestAcc": fmt_pct(r.best_test_mean),
                "Inflation": fmt_signed_pct(r.best_test_mean - r.test_mean),
                "ValAcc": fmt_pct(r.val_mean),
                "Seeds": str(r.n),
                "Delta": fmt_signed_pct(r.delta),
                "PValue": fmt_p(r.p_value),
                "ModelEpochs": f"{r.model_epochs:.0f}",
                "WallTime": DASH if pd.isna(r.wall_time_s) else f"{r.wall_time_s:.1f}",
            }
            for quantity, value in values.items():
                _put(out, macro_name(target, r.method, quantity), value, f"{r.method} on {target}")
            if r.method == "amcf" and ref and not pd.isna(r.delta):
                compared += 1
                amcf_deltas.append(r.delta)
                amcf_above += r.delta > 0
                amcf_sig += bool(r.delta > 0 and r.p_value < alpha)
    amcf = frame[frame["method"] == "amcf"]
    targets = sorted(frame["target"].unique())
    # NaN for runs that read the test split at the selected epochs only (test_eval: selected)
    inflation = frame["best_test_acc"] - frame["test_acc"]
    every_epoch = frame[inflation.notna()]
    seeds = frame.groupby(["target", "method"])["seed"].nunique()
    aggregates = dict(
        NumTargets=str(frame["target"].nunique()),
        NumMethods=str(frame["method"].nunique()),
        NumRuns=str(len(frame)),
        MinSeeds=str(seeds.min()),
        MaxSeeds=str(seeds.max()),
        SeedCount=(str(seeds.min()) if seeds.min() == seeds.max()
                   else f"{seeds.min()} to {seeds.max()}"),
        TargetList=", ".join(f"\\texttt{{{escape_latex(t)}}}" for t in targets),
        SignificanceLevel=f"{alpha:g}",
        AmcfTargetsCompared=str(compared),
        AmcfTargetsAboveReference=str(amcf_above),
        AmcfTargetsSignificant=str(amcf_sig),
        AmcfMeanDelta=fmt_signed_pct(sum(amcf_deltas) / len(amcf_deltas)) if amcf_deltas else "--",
        AmcfMeanInflation=fmt_pct((amcf["best_test_acc"] - amcf["test_acc"]).mean())
        if len(amcf) else "--",
        InflationRuns=str(len(every_epoch)),
        InflationMethods=", ".join(f"\\texttt{{{escape_latex(m)}}}"
                                   for m in sorted(set(every_epoch["method"]))) or "none",
        MeanInflation=fmt_pct(inflation.mean()),
        MaxInflation=fmt_pct(inflation.max()),
        Devices=escape_latex(", ".join(sorted(set(frame["device"].astype(str))))),
    )
    for name, value in aggregates.items():
        _put(out, name, value, "aggregate")
    return out


def render_macros(macros: Mapping[str, str]) -> str:
    """The text of a macros file; refuses names that are not TeX control words."""
    bad = [n for n in macros if not re.fullmatch(r"[A-Za-z]+", n)]
    if bad:
        raise ValueError(f"macro names must be letters only, got {bad}; build them with macro_name")
    # the header keeps the module's name of the committed paper (it is part of its bytes)
    lines = ["% Generated by amcf.reporting.macros: do not edit; re-run the report stage."]
    lines += [f"\\newcommand{{\\{name}}}{{{value}}}" for name, value in sorted(macros.items())]
    return "\n".join(lines) + "\n"


def merge_macros(*groups: Mapping[str, str]) -> dict[str, str]:
    """Merge macro groups; two different values under one name is an error, not an overwrite."""
    merged: dict[str, str] = {}
    for group in groups:
        for name, value in group.items():
            if name in merged and merged[name] != value:
                raise ValueError(
                    f"macro \\{name} would be defined twice ({merged[name]!r} vs {value!r}): two "
                    "targets or methods differ only in punctuation; rename one of them"
                )
            merged[name] = value
    return merged


def write_macros(path: str | os.PathLike, macros: Mapping[str, str]) -> Path:
    return write_text(path, render_macros(macros))
