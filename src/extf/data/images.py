"""Image files -> arrays: the `image_dir` dataset and `extf predict input=<folder>`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from extf.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def read_images(paths: list[Path], shape: tuple) -> np.ndarray:
    """Read, convert (grayscale for 1 channel, RGB for 3) and resize images to `shape` = (height, width, channels).
    Pixel values stay 0..255: the model rescales them."""
    from PIL import Image, UnidentifiedImageError

    if len(shape) != 3 or shape[-1] not in (1, 3):
        raise DataError(f"Images need a model input of shape (height, width, 1 or 3). Received: {tuple(shape)}")
    height, width, channels = shape
    files = [p for p in paths if p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise DataError(f"No images found: expected files ending in {', '.join(IMAGE_SUFFIXES)}. "
                        f"Received: {len(paths)} file(s), e.g. {[p.name for p in paths[:3]]}")
    out = np.empty((len(files), height, width, channels), dtype="float32")
    for i, path in enumerate(files):
        try:
            with Image.open(path) as img:
                img = img.convert("L" if channels == 1 else "RGB").resize((width, height))
                arr = np.asarray(img, dtype="float32")
        except (UnidentifiedImageError, OSError) as e:
            raise DataError(f"Cannot read image {str(path)!r} ({e}). Expected a PNG or JPEG file; remove or "
                            f"replace it. Received: {path.name}") from None
        out[i] = arr[..., np.newaxis] if channels == 1 else arr
    return out
