"""Image files, streamed: the `image_dir` dataset and `extf predict input=<folder>`.

Nothing here holds a folder as one array. A folder is a list of file paths (and, for a dataset, a label per file from
its class folder); `ImageReader.dataset` turns a list into a `tf.data` pipeline that reads and decodes the files in
parallel, converts them to grayscale or RGB, resizes them (bilinear, as `keras.utils.image_dataset_from_directory`),
batches and prefetches. Pixel values stay 0..255: the model rescales them.

A file that cannot be decoded must not stop training in the middle of an epoch, so every file is checked when the
folder is listed (`check_images`): its first bytes must be a PNG, JPEG, GIF or BMP signature and its last bytes the
format's end marker (a cut file lacks it). That reads about 30 bytes a file; a file without the end marker at the
very end (data appended after it, as some cameras do) is decoded with Pillow to be sure. A file complete at both
ends but damaged inside makes TensorFlow's decoder fail while it is read: `decode_errors_named` then finds it
(decoding the files one by one) and the run stops with its name.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from extf.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
CACHE_BYTES = 64 * 2**20  # a split whose decoded images (float32) fit in this is decoded once and kept in memory
_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF87a": "GIF", b"GIF89a": "GIF",
               b"BM": "BMP"}
_PNG_END = b"IEND\xaeB`\x82"  # the IEND chunk's type and CRC: the last 8 bytes of every complete PNG


def list_images(folder: Path) -> list[Path]:
    """The image files of a folder (by suffix, as Keras' loaders), sorted by name; sub-folders are not entered."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def image_problem(path: Path) -> str | None:
    """Why `path` cannot be decoded as an image, or None when it can (see the module docstring)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            size = f.seek(0, 2)
            f.seek(max(0, size - 16))
            tail = f.read()
    except OSError as e:
        return f"cannot be read: {e.strerror}"
    kind = next((k for sig, k in _SIGNATURES.items() if head.startswith(sig)), None)
    if kind is None:
        return f"is not a PNG, JPEG, GIF or BMP image (it starts with the bytes {head!r})"
    complete = {"PNG": tail.endswith(_PNG_END), "JPEG": tail.endswith(b"\xff\xd9"), "GIF": tail.endswith(b"\x3b"),
                "BMP": size >= 6 and int.from_bytes(head[2:6], "little") == size}[kind]
    return None if complete else _decode_problem(path, kind)


def _decode_problem(path: Path, kind: str) -> str | None:
    """The slow check, for the few files whose end is not the format's end marker: decode them with Pillow."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            if kind == "PNG":
                img.verify()  # every chunk's CRC, up to IEND
            else:
                if kind == "JPEG":
                    img.draft("RGB", (img.width // 8 or 1, img.height // 8 or 1))  # entropy-decoded, 1/8 scale
                img.load()
    except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError... for broken data
        return f"is a cut or damaged {kind} file ({e})"
    return None


def check_images(paths: list[Path], skip_bad_files: bool = False,
                 skip_hint: str | None = "set dataset.skip_bad_files=true to leave such files out"
                 ) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(the files that decode, the others with their problem). A bad file is an error naming it, unless
    `skip_bad_files`: then it is left out and returned with its reason. `skip_hint`: how the user can skip them."""
    good, bad = [], []
    for path in paths:
        problem = image_problem(path)
        if problem is None:
            good.append(path)
            continue
        if not skip_bad_files:
            fix = f"remove or replace it, or {skip_hint}" if skip_hint else "remove or replace it"
            raise DataError(f"Cannot read image {str(path)!r}: it {problem}. Expected a PNG, JPEG, GIF or BMP file; "
                            f"{fix}. Received: {path.name}")
        bad.append((path, problem))
    return good, bad


@dataclass(frozen=True)
class ImageReader:
    """Reads image files as the model's inputs: (height, width, channels) float32, pixel values 0..255."""

    height: int
    width: int
    channels: int  # 1 (grayscale) or 3 (RGB)

    @classmethod
    def for_shape(cls, shape) -> ImageReader:
        shape = tuple(int(d) for d in shape)
        if len(shape) != 3 or shape[-1] not in (1, 3):
            raise DataError(f"Images need a model that takes images of shape (height, width, 1 or 3), but this "
                            f"model takes inputs of shape {shape}. Give it a .csv or .npy file instead, or use a "
                            f"model trained on images. Received: input shape {shape}")
        return cls(*shape)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.height, self.width, self.channels

    def decode(self, path):
        """One file (a string tensor) -> its image as the model takes it; GIFs give their first frame."""
        import tensorflow as tf

        raw = tf.io.read_file(path)
        image = tf.io.decode_image(raw, channels=3, expand_animations=False, dtype=tf.uint8)
        if self.channels == 1:
            image = tf.image.rgb_to_grayscale(image)  # ITU-R 601 luma, as Pillow's convert("L")
        image = tf.image.resize(image, (self.height, self.width))  # bilinear, float32
        image.set_shape(self.shape)
        return image

    def dataset(self, files: list, labels: np.ndarray | None = None, batch_size: int = 32, shuffle: bool = False,
                seed: int | None = None):
        """A batched, prefetched tf.data pipeline over `files` (with their `labels`: (x, y) pairs); shuffled each
        epoch (the file names, before decoding) with `seed` when `shuffle`. The order is the files' otherwise."""
        import tensorflow as tf

        paths = [str(p) for p in files]
        ds = tf.data.Dataset.from_tensor_slices(paths if labels is None else (paths, np.asarray(labels)))
        # a small split is decoded once, in its first pass, and kept: the later epochs read no file
        cache = len(paths) * self.height * self.width * self.channels * 4 <= CACHE_BYTES
        if shuffle and not cache:  # the file names, before decoding: nothing decoded waits in a buffer
            ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
        decode = self.decode if labels is None else (lambda p, y: (self.decode(p), y))
        ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if cache:
            ds = ds.cache()
            if shuffle:  # the same order as the file names' shuffle with this seed (a permutation of as many)
                ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
        # a static batch size when it divides the files (no remainder dropped), as the other splits
        return ds.batch(batch_size, drop_remainder=len(paths) % batch_size == 0).prefetch(tf.data.AUTOTUNE)

    def read(self, files: list) -> np.ndarray:
        """A few files as one array (an input example); the same decoding as `dataset`."""
        if not files:
            return np.zeros((0, *self.shape), dtype="float32")
        return np.concatenate([np.asarray(b) for b in self.dataset(files, batch_size=64)]).astype("float32")


@contextmanager
def decode_errors_named(files, skip_hint: str | None = None):
    """Turn TensorFlow's decoding failure in a pipeline over `files` (it does not say which file) into one error
    naming the files its decoder refuses."""
    import tensorflow as tf

    try:
        yield
    except tf.errors.InvalidArgumentError:
        bad = undecodable(files)
        if not bad:
            raise
        fix = f"remove or replace it ({skip_hint} does not find such files)" if skip_hint else "remove or replace it"
        raise DataError(f"Cannot decode image {bad[0]!r}: its first and last bytes look right, but its data is "
                        f"damaged ({len(bad)} such file(s): {', '.join(Path(b).name for b in bad[:5])}). Expected a "
                        f"PNG, JPEG, GIF or BMP file; {fix}. Received: {Path(bad[0]).name}") from None


def undecodable(files) -> list[str]:
    """The files TensorFlow's image decoder refuses, one by one (only after a pipeline failed: it is slow)."""
    import tensorflow as tf

    bad = []
    for path in map(str, files):
        try:
            tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError):
            bad.append(path)
    return bad


def folder_images(folder: Path) -> list[Path]:
    """The images of a prediction folder in name order, each checked (one error names a file that cannot be read)."""
    files = list_images(folder)
    if not files:
        others = sorted(p.name for p in folder.iterdir())[:3]
        raise DataError(f"No images found in {str(folder)!r}: expected files ending in {', '.join(IMAGE_SUFFIXES)}. "
                        f"Received: {len(list(folder.iterdir()))} entries, e.g. {others}")
    return check_images(files, skip_hint=None)[0]
