"""Generated dataset cards (markdown): what a dataset is, how it was split, and why."""

from __future__ import annotations

from collections import Counter
from typing import Any

from compendium.data.splits import SPLITS


def per_class_counts(prep: Any) -> dict[str, dict[str, int]]:
    """Images per class in each split of a :class:`~compendium.data.prepared.Prepared` dataset."""
    out: dict[str, dict[str, int]] = {}
    for s in ("train", "val", "test"):
        cnt = Counter(int(y) for y, sp in zip(prep.labels, prep.split, strict=True) if sp == s)
        # every class, so a class missing from a split shows as 0 (the card's minimum)
        out[s] = {name: cnt.get(k, 0) for k, name in enumerate(prep.classes)}
    return out


def _classes_line(classes: list[str], limit: int = 40) -> str:
    shown = ", ".join(f"`{c}`" for c in classes[:limit])
    extra = len(classes) - limit
    more = f", ... ({extra} more; all in manifest.csv)" if extra > 0 else ""
    return shown + more


def render_card(info: dict[str, Any], per_class: dict[str, dict[str, int]] | None = None) -> str:
    """Markdown card from a prepared dataset's ``info`` (see :mod:`compendium.data.prepared`)."""
    c = info["counts"]
    shape = info.get("image_shape")
    size = (f"{shape[1]}x{shape[2]} px, {shape[0]} channel(s), uint8, decoded once into "
            "tensors.pt" if shape else "original files, read on access (224-px recipe)")
    lines = [
        f"# Dataset card: {info['name']}",
        "",
        f"{info.get('title', '')}",
        "",
        "| field | value |",
        "|---|---|",
        f"| role | {info.get('role', 'target')} |",
        f"| profile | {info.get('profile', '')} |",
        f"| classes | {len(info['classes'])} |",
        f"| images | {sum(c.values())} (train {c['train']}, val {c['val']}, test {c['test']}) |",
        f"| image size | {size} |",
        f"| normalisation | mean {info['mean']}, std {info['std']} |",
        f"| split seed | {info.get('seed', 0)} |",
        f"| source | {info.get('source', '')} |",
        f"| licence | {info.get('licence', '')} |",
        "",
        "## Images per split",
        "",
        "| split | images | per class (min-max) |",
        "|---|---|---|",
    ]
    for s in SPLITS:
        pc = (per_class or {}).get(s, {})
        rng = f"{min(pc.values())}-{max(pc.values())}" if pc else "-"
        lines.append(f"| {s} | {c[s]} | {rng} |")
    lines += [
        "",
        "val is carved from the training data (stratified, seeded) and is what model "
        "selection and the layer search see; test is used only for reporting.",
        "",
        "## Classes",
        "",
        _classes_line(list(info["classes"])),
        "",
        "## Why these sizes",
        "",
        info.get("reasoning") or "Official splits of the dataset (see its citation).",
        "",
        "## Raw inputs (verified before decoding)",
        "",
    ]
    lines += [f"- `data/{p}`: `{h}`" for p, h in sorted(info.get("inputs", {}).items())]
    if info.get("unused_images"):
        lines += ["", f"{info['unused_images']} images of the raw data are not used (see above)."]
    lines += _damaged_section(info.get("damaged_images") or [])
    lines += ["", "## Citation", "", "```", info.get("citation", "").strip(), "```", ""]
    return "\n".join(lines)


def _damaged_section(damaged: list[dict[str, str]]) -> list[str]:
    """The images of a split that could not be decoded and were left out (none: no section,
    so the card of a dataset without any is as it always was)."""
    if not damaged:
        return []
    lines = ["", "## Damaged images left out", "",
             f"{len(damaged)} image(s) of the raw data cannot be decoded and are left out; "
             "every other image keeps the split it was drawn into.", ""]
    lines += [f"- `{d['id']}` (drawn into {d['split']}): {d['error']}" for d in damaged]
    return lines
