"""Generated grayscale images of circles, squares and triangles with a class per pixel (segmentation)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from extf.config.constraints import NON_NEGATIVE, POSITIVE_INT, at_least
from extf.config.schema import DatasetConf
from extf.data.arrays import split_arrays
from extf.data.splits import Meta, Splits


@dataclass
class Conf(DatasetConf):
    n_samples: int
    image_size: int  # height = width, in pixels; at least 8
    max_shapes: int  # each image has 1 to max_shapes circles, squares and triangles
    noise: float  # standard deviation of the Gaussian pixel noise (shapes are >= 0.2 brighter than background)
    constraints: ClassVar = {
        "n_samples": POSITIVE_INT, "max_shapes": POSITIVE_INT, "noise": NON_NEGATIVE,
        "image_size": at_least(8, "generated shapes need at least 8x8 pixels to be told apart"),
    }


SHAPE_CLASSES = ("background", "circle", "square", "triangle")
# radius of the circle around a shape, per unit of its size: a square's corners reach sqrt(2) out, and a triangle
# is drawn 1.3 times larger than a circle of the same size so that their areas are alike
BOUND_FACTOR = {1: 1.0, 2: float(np.sqrt(2)), 3: 1.3}


def load(cfg: dict, seed: int) -> Splits:
    """Grayscale images of 1 to `max_shapes` circles, squares and triangles with a class per pixel (segmentation).

    Shapes are about 1/4 to 2/5 of the image wide, never overlap or touch (so every boundary in the mask is visible in
    the image), and have a random brightness at least 0.2 above a random background level; Gaussian pixel noise
    of standard deviation `noise` goes over everything. The class of a shape is in its outline only.
    """
    n, size, max_shapes, noise = cfg["n_samples"], cfg["image_size"], cfg["max_shapes"], cfg["noise"]
    rng = np.random.default_rng(seed)
    # pixel centres, so that a shape covers the pixels whose centre is inside it
    rows, cols = np.mgrid[0:size, 0:size] + 0.5
    images = np.empty((n, size, size, 1), dtype="float32")
    masks = np.zeros((n, size, size), dtype="int64")
    for i in range(n):
        background = rng.uniform(0.0, 0.3)
        image = np.full((size, size), background)
        placed: list[tuple[float, float, float]] = []  # (row, col, bounding radius) of the shapes drawn so far
        for _ in range(rng.integers(1, max_shapes + 1)):
            for _attempt in range(30):  # a crowded image gets fewer shapes rather than overlapping ones
                label = int(rng.integers(1, len(SHAPE_CLASSES)))
                radius = rng.uniform(size / 9, size / 5)  # half a circle's or square's width
                bound = radius * BOUND_FACTOR[label]
                r0, c0 = rng.uniform(bound, size - bound, size=2)
                if all(np.hypot(r0 - r, c0 - c) > bound + b + 1.5 for r, c, b in placed):
                    break
            else:
                continue
            inside = _shape_pixels(label, r0, c0, radius, rows, cols, rng)
            if not inside.any():
                continue
            placed.append((r0, c0, bound))
            masks[i][inside] = label
            image[inside] = rng.uniform(background + 0.2, 1.0)
        images[i, ..., 0] = image + rng.normal(0.0, noise, size=image.shape)
    meta = Meta("shapes", "segmentation", "image", (size, size, 1), SHAPE_CLASSES)
    return split_arrays(images, masks, meta, cfg, seed)


def _shape_pixels(label: int, r0: float, c0: float, radius: float, rows, cols, rng) -> np.ndarray:
    """Boolean mask of a circle (1), an axis-aligned square (2) or a randomly turned equilateral triangle (3)."""
    if label == 1:
        return (rows - r0) ** 2 + (cols - c0) ** 2 <= radius**2
    if label == 2:
        return (np.abs(rows - r0) <= radius) & (np.abs(cols - c0) <= radius)
    turn = rng.uniform(0, 2 * np.pi / 3)  # an equilateral triangle repeats every 120 degrees
    angles = turn + np.array([0.0, 2.0, 4.0]) * np.pi / 3
    reach = radius * BOUND_FACTOR[3]
    vertices = np.stack([r0 + reach * np.sin(angles), c0 + reach * np.cos(angles)], axis=1)
    inside = np.ones(rows.shape, dtype=bool)
    for k in range(3):  # inside = on the same side of each edge as the centre
        (ra, ca), (rb, cb) = vertices[k], vertices[(k + 1) % 3]
        side = (rb - ra) * (cols - ca) - (cb - ca) * (rows - ra)
        centre_side = (rb - ra) * (c0 - ca) - (cb - ca) * (r0 - ra)
        inside &= side * centre_side >= 0
    return inside
