"""Tiling images into one picture."""

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from disent.results import write_atomic


def image_grid(images: np.ndarray, padding: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """Tile images (rows, cols, C, H, W) with values in [0, 1] into one uint8 RGB array (H', W', 3)."""
    rows, cols, channels, height, width = images.shape
    if channels == 1:
        images = np.repeat(images, 3, axis=2)
    elif channels != 3:
        raise ValueError(f"images need 1 or 3 channels, got {channels}")
    out = np.full(
        (rows * (height + padding) + padding, cols * (width + padding) + padding, 3),
        pad_value,
        dtype=np.float32,
    )
    for r in range(rows):
        for c in range(cols):
            top, left = padding + r * (height + padding), padding + c * (width + padding)
            out[top : top + height, left : left + width] = images[r, c].transpose(1, 2, 0)
    return (np.clip(out, 0.0, 1.0) * 255).round().astype(np.uint8)


def stack_vertically(pictures: list[np.ndarray], gap: int = 6) -> np.ndarray:
    """Stack uint8 RGB pictures of possibly different widths, left-aligned on a white canvas."""
    width = max(p.shape[1] for p in pictures)
    height = sum(p.shape[0] for p in pictures) + gap * (len(pictures) - 1)
    out = np.full((height, width, 3), 255, dtype=np.uint8)
    top = 0
    for picture in pictures:
        out[top : top + picture.shape[0], : picture.shape[1]] = picture
        top += picture.shape[0] + gap
    return out


def labelled_rows(pictures: list[np.ndarray], labels: list[str], gap: int = 6) -> np.ndarray:
    """`stack_vertically` with a text label left of each picture, vertically centred on it (PIL's
    built-in bitmap font: nothing to install or download)."""
    font = ImageFont.load_default()
    margin = 8 + max(int(font.getlength(label)) for label in labels)
    rows = []
    for picture, label in zip(pictures, labels, strict=True):
        # tall enough for the text even beside a thin picture
        height = max(picture.shape[0], 14)
        row = Image.new("RGB", (margin + picture.shape[1], height), "white")
        row.paste(Image.fromarray(picture), (margin, 0))
        ImageDraw.Draw(row).text((4, height // 2), label, fill="black", font=font, anchor="lm")
        rows.append(np.asarray(row))
    return stack_vertically(rows, gap)


def save_png(picture: np.ndarray, path: str | Path) -> Path:
    """Write a uint8 RGB array as PNG, atomically (`disent.results.write_atomic`)."""
    return write_atomic(path, lambda file: Image.fromarray(picture).save(file, format="PNG"))
