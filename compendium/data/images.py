"""Pixel conventions of the embedded profile: 28x28 grey, strokes bright on a black ground.

Every dataset ends in :func:`fit_to_canvas`, so objects of all sources and targets occupy a
comparable box (MNIST's own convention: the content fits a 20x20 box centred in 28x28; emoji,
being denser, get 24x24).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from compendium.data.errors import DataError

SIZE = 28
RESAMPLE = Image.Resampling.LANCZOS


def open_image(data: bytes, *, what: str) -> Image.Image:
    """Decode image bytes fully (so a truncated file fails here, not during training)."""
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"unreadable image {what}: {exc}. Fix: re-fetch the dataset "
                        "(`amcf data fetch`) or remove the file from your folder.") from exc
    return img


def fit_to_canvas(img: Image.Image, inner: int, size: int = SIZE) -> np.ndarray:
    """Scale a grey image so its longer side is ``inner`` px and centre it on a black canvas."""
    w, h = img.size
    scale = inner / max(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    img = img.resize(new, RESAMPLE)
    canvas = Image.new("L", (size, size), 0)
    canvas.paste(img, ((size - new[0]) // 2, (size - new[1]) // 2))
    return np.asarray(canvas, dtype=np.uint8)


def rgba_on_black(img: Image.Image) -> Image.Image:
    """Alpha-composite a colour image on black and convert to grey (ITU-R 601 luma)."""
    rgba = img.convert("RGBA")
    black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
    return Image.alpha_composite(black, rgba).convert("L")


def emoji_to_grey(img: Image.Image, *, inner: int = 24) -> np.ndarray:
    """Crop an RGBA emoji to its opaque pixels, composite on black, fit into ``inner`` px."""
    rgba = img.convert("RGBA")
    box = rgba.getchannel("A").getbbox()
    if box is None:
        raise DataError("emoji image is fully transparent")
    return fit_to_canvas(rgba_on_black(rgba.crop(box)), inner)


def stack(images: list[np.ndarray]) -> np.ndarray:
    """(N, H, W) grey arrays -> uint8 (N, 1, H, W)."""
    return np.stack(images).astype(np.uint8)[:, None]
