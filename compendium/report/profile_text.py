"""The sentences of the paper's Setup and Limitations that depend on the profile that produced
the numbers: which data, how many searches, what the numbers can and cannot show.

``paper/main.tex`` cites them as macros (``\\SetupData``, ``\\SetupSearches``,
``\\SetupSourceDraws``, ``\\LimitationsScale``, ``\\LimitationsCaveats``), so the embedded
default's paper describes tiny networks on grey images, the paper profile's the original
setting, and the rehearsal's says that its numbers test the pipeline only. The datasets and
sources are named from the runs' own lists (a target or source of your own appears under its
name); what is said about each comes from the tables below.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from compendium.report.claims import FEW_SEED_PATTERN
from compendium.report.latex import escape_latex
from compendium.report.macros import PaperParams

# what a source was pretrained on, by its name under amcf.sources
SOURCES = {
    "mnist": r"handwritten digits \citep{lecun1998mnist}",
    "animals": r"five classes of Animal-MNIST \citep{mohammadi2025animalmnist}",
    "twemoji": r"Twemoji glyphs \citep{twemoji}",
    "imagenet": r"ImageNet \citep{deng2009imagenet} (torchvision's weights)",
    "cifar100": r"CIFAR-100 \citep{krizhevsky2009cifar} (the ImageNet network fine-tuned on it)",
}
# what a target dataset is, by its registered name
TARGETS = {
    "digits": r"the UCI optical digits \citep{alpaydin1998digits}",
    "omniglot-small": r"the characters of the five alphabets of Omniglot's first small "
                      r"background set \citep{lake2015omniglot}",
    "omniglot-small2": r"the characters of the three other alphabets of Omniglot's second "
                       r"small background set \citep{lake2015omniglot}",
    "fashion": r"the product photos of Fashion-MNIST \citep{xiao2017fashion}",
    "animals-novel": r"the five Animal-MNIST classes that the animal source never saw "
                     r"\citep{mohammadi2025animalmnist}",
    "mit-indoor67": r"the indoor scenes of MIT Indoor-67 \citep{quattoni2009indoor}",
    "stanford-dogs": r"the breeds of Stanford Dogs \citep{khosla2011dogs}",
    "fgvc-aircraft": r"the aircraft variants of FGVC-Aircraft \citep{maji2013aircraft}",
    "caltech256-30": r"Caltech-256 \citep{griffin2007caltech} with 30 training images per class",
    "caltech256-60": r"Caltech-256 \citep{griffin2007caltech} with 60 training images per class",
    "decathlon-ucf101": r"the dynamic images of UCF101 from the Visual Decathlon "
                        r"\citep{soomro2012ucf101,rebuffi2017decathlon}",
    "decathlon-omniglot": r"the characters of Omniglot from the Visual Decathlon "
                          r"\citep{lake2015omniglot,rebuffi2017decathlon}",
}
def _join(items: Sequence[str], last: str = " and ") -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + last + items[-1]


def _named(table: Mapping[str, str], name: str) -> str:
    return table.get(name, rf"\texttt{{{escape_latex(name)}}}")


def sources_text(sources: Sequence[str]) -> str:
    """``on A, on B and on C``: what each source was pretrained on."""
    return _join([f"on {_named(SOURCES, s)}" for s in sources])


def _shots_phrase(shots: int | None) -> str:
    if shots is None:
        return ""
    return " with one training image per class" if shots == 1 else \
        f" with {shots} training images per class"


def targets_text(targets: Sequence[str], shots: Mapping[str, int | None] | None = None) -> str:
    """The targets, each with what it is and its training images per class where the runs
    drew a few per seed (``shots``, from the runs' metrics)."""
    shots = shots or {}
    return _join([_named(TARGETS, t) + _shots_phrase(shots.get(t)) for t in targets],
                  last=", and ")


def setup_data(profile: str, sources: Sequence[str], targets: Sequence[str],
               shots: Mapping[str, int | None] | None = None) -> str:
    """What the sources were pretrained on and what the targets are, for this profile."""
    src, tgt = sources_text(sources), targets_text(targets, shots)
    drawn = ("; each training seed drew those few images afresh from the target's training "
             "pool, so the spread over seeds includes which images a run happened to get"
             if any(v is not None for v in (shots or {}).values()) else "")
    if profile == "embedded":
        return (f"In the embedded profile the sources are pretrained {src}, and the targets are "
                f"{tgt}{drawn}; the paper profile uses the original paper's ImageNet and CIFAR "
                r"sources and its target suite (Table~\ref{tab:deviations}).")
    if profile == "paper":
        return (f"In the paper profile, as in the original paper "
                rf"(Table~\ref{{tab:deviations}}), the sources are pretrained {src}, and the "
                f"targets are {tgt}{drawn}.")
    if profile == "rehearsal":
        return ("The rehearsal profile runs every stage of the paper profile at toy size on a "
                "CPU: miniature copies of the paper's datasets, in their official formats, "
                f"stand for {tgt}, and a tiny residual network with stand-in weights for each "
                r"ResNet-50 source (Table~\ref{tab:deviations}).")
    return (f"In the \\texttt{{{escape_latex(profile)}}} profile the sources are pretrained "
            rf"{src}, and the targets are {tgt}{drawn} (Table~\ref{{tab:deviations}}).")


def setup_searches(count: int) -> str:
    """How many layer searches each target had, and what that means for the spread."""
    if count > 1:
        return (f"The layer search ran {count} times per target, each time with its own seed "
                "for the swarm and for its fitness runs, and training seed $s$ used the scheme "
                f"of search $s \\bmod {count}$, so the spread over seeds includes the search's "
                "own variance.")
    return ("The layer search ran once per target, as in the original paper, and every "
            "training seed used its scheme, so the spread over seeds leaves out the search's "
            "own variance.")


def setup_source_draws(count: int) -> str:
    """How many times each source was pretrained, and what that means for the spread."""
    if count > 1:
        return (f"Each source was pretrained {count} times, each time with its own seed, and "
                f"training seed $s$ used the sources of draw $s \\bmod {count}$ (the search of "
                "the same draw), so the spread over seeds includes which source models one "
                "happened to get.")
    return ("Each source was pretrained once, so the spread over seeds leaves out which "
            "source models one happened to get.")


def limitations_scale(profile: str, params: PaperParams) -> str:
    """What the profile's scale lets its numbers say."""
    if profile == "embedded":
        return ("The embedded profile is small by design: tiny residual networks on "
                "low-resolution grey images, few-shot targets and short schedules, so that it "
                "runs on a laptop's CPU. Its verdicts concern that regime and need not carry "
                "over to the original setting of large pretrained networks at full resolution, "
                "which the paper profile reproduces but which needs GPU time we report "
                "separately.")
    if profile == "paper":
        return ("The paper profile repeats the original setting at full scale (sources of "
                f"architecture \\texttt{{{escape_latex(params.source_arch)}}} at "
                f"{params.image_size} pixels, the original targets, swarm and schedule), apart "
                "from the departures of Section~\\ref{sec:deviations}. Its validation data are "
                "carved from each target's training images where the dataset has no validation "
                "split of its own, so its final runs train on fewer images than the original "
                "script's, which had no validation split and selected on the test split.")
    if profile == "rehearsal":
        epochs = f"{params.epochs} epoch{'s' if params.epochs != 1 else ''}"
        return ("The rehearsal profile's numbers test the pipeline, not the method: miniature "
                f"datasets, networks with stand-in weights and final runs of {epochs} cannot "
                "show whether AMCF helps, and no conclusion about the method may be drawn from "
                "them; the paper profile gives the real ones.")
    return (f"These runs' verdicts concern the settings of the \\texttt{{{escape_latex(profile)}}}"
            r" profile (Table~\ref{tab:deviations}) and need not carry over to the original "
            "setting of large pretrained networks at full resolution.")


def caveats(frame: pd.DataFrame, batch_size: int | None = None,
            fitness_epochs: int | None = None) -> str:
    """Sentences that only some runs need, each with a leading space (empty: none), so that
    ``...in general.\\LimitationsCaveats{} We...`` reads right either way."""
    out = []
    seeds = frame.groupby("method")["seed"].nunique()
    few = [m for m in seeds.index if FEW_SEED_PATTERN.match(m)]
    if few and min(seeds[m] for m in few) < seeds.max():
        out.append("The exploratory ablations ran on fewer seeds than the planned "
                   "comparisons.")
    devices = set(frame["device"].astype(str)) if "device" in frame else set()
    if any(d.startswith("cuda") for d in devices):
        out.append("Runs on CUDA GPUs need not repeat bit for bit (their kernels may sum in "
                   "another order from run to run, and the numerical policy that makes CPU "
                   "results repeat covers CPUs only), so a rerun gives slightly different "
                   "numbers.")
    out += few_image_caveats(frame, batch_size, fitness_epochs)
    return "".join(f" {sentence}" for sentence in out)


def few_image_caveats(frame: pd.DataFrame, batch_size: int | None,
                      fitness_epochs: int | None) -> list[str]:
    """What the fewest training images imply: targets whose training set fits in one batch
    take one SGD step an epoch (so a fitness run is as many steps as epochs)."""
    known = frame.dropna(subset=["train_images"]) if "train_images" in frame else frame.iloc[:0]
    if known.empty:
        return []
    images = known.groupby("target")["train_images"].max().astype(int)
    one_step = [t for t, n in images.items() if batch_size and n <= batch_size]
    if not one_step:
        return []
    names = _join([f"\\texttt{{{escape_latex(t)}}} ({images[t]} images)" for t in one_step])
    steps = (f", so a fitness run of {fitness_epochs} epochs is {fitness_epochs} steps"
             if fitness_epochs else "")
    return [f"On {names} the whole training set is one batch and an epoch a single step of "
            f"SGD{steps}."]


# the share of runs whose selected epoch must come before the last for the recipe to count as
# trained to its plateau (issue 20)
PLATEAU_SHARE = 0.8


def plateau_sentence(frame: pd.DataFrame) -> str:
    """How often the epoch selected on validation came before the last one, overall and per
    target, and what that means: where the last epoch is the best, the models were still
    improving when training stopped, and the comparison measures how fast the methods learn
    rather than where fine-tuning ends."""
    if not {"selected_epoch", "epochs"} <= set(frame.columns):
        return ""
    known = frame.dropna(subset=["selected_epoch", "epochs"])
    if known.empty:
        return ""
    before = known["selected_epoch"] < known["epochs"]
    share = float(before.mean())
    per_target = ", ".join(
        f"{100 * float(b.mean()):.0f}\\% on \\texttt{{{escape_latex(t)}}}"
        for t, b in before.groupby(known["target"]))
    text = (f"The epoch selected on validation came before the last one in {100 * share:.0f}\\% "
            f"of the {len(known)} runs ({per_target})")
    if share >= PLATEAU_SHARE:
        return text + ", so most runs had reached their plateau when training stopped."
    return (text + f", below the {100 * PLATEAU_SHARE:.0f}\\% a recipe trained to its plateau "
            "would give: many runs were still improving at their last epoch, so the comparisons "
            "measure how fast the methods learn as much as where fine-tuning ends.")


def target_shots(frame: pd.DataFrame) -> dict[str, int | None]:
    """Each target's training images per class drawn per seed, from its runs' metrics (None
    where the runs trained on the whole training split or do not say)."""
    if "shots" not in frame:
        return {}
    return {t: (None if s.dropna().empty else int(s.dropna().iloc[0]))
            for t, s in frame.groupby("target")["shots"]}


def profile_macros(profile: str, params: PaperParams, frame: pd.DataFrame,
                   search_count: int) -> dict[str, str]:
    """The Setup and Limitations macros for ``profile``'s runs (``frame``, as collected)."""
    targets = sorted(frame["target"].unique())
    return {
        "SetupData": setup_data(profile, params.sources, targets, target_shots(frame)),
        "SetupSearches": setup_searches(search_count),
        "SetupSourceDraws": setup_source_draws(params.source_draws),
        "LimitationsScale": limitations_scale(profile, params),
        "LimitationsCaveats": caveats(frame, params.batch_size, params.search_epochs),
        "LimitationsPlateau": plateau_sentence(frame),
    }
