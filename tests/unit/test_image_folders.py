"""Image folders stream: the file list is split (seeded, stratified), images of any size and mode become the model's
input shape, unreadable files are refused before training (or skipped and counted), and no split holds the images."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest

from extf.data import load_dataset
from extf.data.images import ImageReader, check_images, decode_errors_named, image_problem, list_images
from extf.data.splits import FileSplit
from extf.errors import DataError


def folder_cfg(path, **extra):
    return {"name": "image_dir", "path": str(path), "height": 8, "width": 8, "color_mode": "rgb",
            "val_fraction": 0.2, "test_fraction": 0.2, **extra}


def write_folder(root, counts: dict[str, int], size=(10, 10)):
    """Class folders of small PNGs whose pixel value encodes (class, file number), so a decoded batch can be traced."""
    from PIL import Image

    for c, (name, n) in enumerate(counts.items()):
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((*size, 3), 10 * c + i % 10, dtype="uint8")).save(root / name / f"{i:03d}.png")
    return root


def split_files(splits):
    return [set(s.files) for s in (splits.train, splits.val, splits.test)]


def test_the_split_of_the_file_list_is_seeded_stratified_and_disjoint(tmp_path):
    root = write_folder(tmp_path / "photos", {"a": 30, "b": 20, "c": 50})
    first = load_dataset(folder_cfg(root), seed=3)
    again = load_dataset(dict(folder_cfg(root), height=9), seed=3)  # another config key: not the cached object
    other = load_dataset(folder_cfg(root), seed=4)
    train, val, test = split_files(first)
    assert not (train & val or train & test or val & test) and len(train | val | test) == 100
    assert split_files(again) == split_files(first)  # same seed -> the same files in each split
    assert split_files(other) != split_files(first)
    assert (len(first.train), len(first.val), len(first.test)) == (60, 20, 20)
    for split in (first.train, first.val, first.test):  # stratified: every split keeps the 3:2:5 class mix
        counts = np.bincount(split.y, minlength=3) / len(split)
        assert np.allclose(counts, [0.3, 0.2, 0.5], atol=0.051), counts
        # the labels are the files' class folders
        assert all(f.split("/")[-2] == first.meta.class_names[y] for f, y in zip(split.files, split.y))


def test_a_split_streams_and_holds_no_images(tmp_path):
    import tensorflow as tf

    root = write_folder(tmp_path / "photos", {"a": 12, "b": 12})
    splits = load_dataset(folder_cfg(root, height=16, width=12), seed=0)
    assert isinstance(splits.train, FileSplit) and not hasattr(splits.train, "x")
    for split in (splits.train, splits.val, splits.test):  # only paths and labels: nothing of image size
        arrays = [v for v in (getattr(split, f.name) for f in dataclasses.fields(split)) if isinstance(v, np.ndarray)]
        assert all(a.ndim == 1 and a.size == len(split) for a in arrays)
    ds = splits.train.dataset(batch_size=4, shuffle=True, seed=1)
    assert isinstance(ds, tf.data.Dataset)
    x_spec, y_spec = ds.element_spec
    assert tuple(x_spec.shape) == (None, 16, 12, 3) and x_spec.dtype == tf.float32 and y_spec.dtype == tf.int64
    batches = list(ds)
    assert [len(b[1]) for b in batches] == [4, 4, 4, 2]
    # each decoded image carries its class in its pixels (10 * class + i): images and labels stay paired
    for x, y in batches:
        assert np.array_equal(np.asarray(x)[:, 0, 0, 0] // 10, np.asarray(y))


def test_shuffling_is_seeded_and_evaluation_order_is_the_file_order(tmp_path):
    root = write_folder(tmp_path / "photos", {"a": 20, "b": 20})
    train = load_dataset(folder_cfg(root), seed=0).train

    def order(ds):
        return np.concatenate([np.asarray(x)[:, 0, 0, 0] for x, _ in ds])

    shuffled = train.dataset(8, shuffle=True, seed=7)
    first_epoch, second_epoch = order(shuffled), order(shuffled)
    assert not np.array_equal(first_epoch, second_epoch)  # reshuffled each epoch
    assert np.array_equal(first_epoch, order(train.dataset(8, shuffle=True, seed=7)))  # the same for the same seed
    in_order = order(train.dataset(8))
    assert np.array_equal(in_order // 10, train.y)  # unshuffled: the labels line up with the outputs


def test_images_of_any_size_and_mode_become_the_input_shape(tmp_path):
    from PIL import Image

    root = tmp_path / "mixed"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    red = np.zeros((30, 50, 3), dtype="uint8")
    red[..., 0] = 200
    Image.fromarray(red).save(root / "a" / "rgb.png")
    Image.fromarray(red).convert("RGBA").save(root / "a" / "rgba.png")
    Image.fromarray(red).convert("P", palette=Image.Palette.ADAPTIVE).save(root / "a" / "palette.gif")
    Image.fromarray(red).save(root / "a" / "photo.jpg", quality=95)
    Image.fromarray(np.full((7, 9), 60, dtype="uint8"), mode="L").save(root / "b" / "gray.png")
    Image.fromarray(np.full((64, 64, 3), 60, dtype="uint8")).save(root / "b" / "big.bmp")
    files = [p for c in ("a", "b") for p in list_images(root / c)]
    rgb = ImageReader(8, 8, 3).read(files)
    gray = ImageReader(8, 8, 1).read(files)
    assert rgb.shape == (6, 8, 8, 3) and gray.shape == (6, 8, 8, 1) and rgb.dtype == np.float32
    reds = [i for i, p in enumerate(files) if p.parent.name == "a"]
    assert np.allclose(rgb[reds][..., 0], 200, atol=3) and np.allclose(rgb[reds][..., 1:], 0, atol=3)
    assert np.allclose(gray[reds], 0.299 * 200, atol=3)  # luma, as Pillow's convert("L")
    assert np.allclose(rgb[[files.index(root / "b" / "gray.png")]], 60, atol=1)  # grayscale -> RGB: replicated


def _jpeg_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype="uint8")).save(buf, "JPEG")
    return buf.getvalue()


def test_unreadable_files_are_found_before_training(tmp_path):
    from PIL import Image

    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype="uint8")).save(good)
    data = good.read_bytes()
    cases = {"cut.png": data[: len(data) // 2], "cut.jpg": _jpeg_bytes()[:300], "notes.png": b"<html>not an image",
             "empty.jpg": b""}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        assert image_problem(tmp_path / name) is not None, name
    # a JPEG with data appended after its end (some cameras do): the slow check decodes it and lets it through
    (tmp_path / "tail.jpg").write_bytes(_jpeg_bytes() + b"extra data after the image")
    assert image_problem(good) is None and image_problem(tmp_path / "tail.jpg") is None
    with pytest.raises(DataError, match=r"Cannot read image .*cut\.png.*skip_bad_files=true.*Received: cut\.png"):
        check_images([good, tmp_path / "cut.png"])
    kept, skipped = check_images([good, *(tmp_path / n for n in cases)], skip_bad_files=True)
    assert kept == [good] and [p.name for p, _ in skipped] == list(cases)


def test_a_corrupt_image_is_one_error_or_skipped_and_counted(tmp_path, capsys):
    root = write_folder(tmp_path / "photos", {"a": 10, "b": 10})
    (root / "b" / "zz_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    with pytest.raises(DataError, match=r"Cannot read image .*zz_broken\.jpg.*Received: zz_broken\.jpg"):
        load_dataset(folder_cfg(root), seed=0)
    splits = load_dataset(folder_cfg(root, skip_bad_files=True), seed=0)
    assert splits.meta.extra["skipped_files"] == 1 and sum(map(len, (splits.train, splits.val, splits.test))) == 20
    assert "left out 1 unreadable image(s) of 21, e.g. zz_broken.jpg" in capsys.readouterr().out


def test_an_empty_class_folder_is_one_error(tmp_path):
    root = write_folder(tmp_path / "photos", {"a": 10, "b": 10})
    (root / "c").mkdir()
    (root / "c" / "README.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"Class folder 'c' has no images.*Received: .*photos/c"):
        load_dataset(folder_cfg(root), seed=0)
    (root / "c" / "bad.png").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"Class folder 'c' has only unreadable images \(1, skipped\)"):
        load_dataset(folder_cfg(root, skip_bad_files=True), seed=0)


def damaged_inside(path) -> None:
    """A PNG with its signature and IEND intact but its pixel data overwritten: it passes the fast check."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype="uint8")).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[len(data) // 2: len(data) // 2 + 200] = bytes(200)
    path.write_bytes(bytes(data))


def test_a_file_damaged_inside_is_named_when_it_is_read(tmp_path):
    root = write_folder(tmp_path / "photos", {"a": 6, "b": 6})
    damaged_inside(root / "b" / "damaged.png")
    assert image_problem(root / "b" / "damaged.png") is None  # the fast check cannot see it
    files = [p for c in ("a", "b") for p in list_images(root / c)]
    with pytest.raises(DataError, match=r"Cannot decode image .*damaged\.png.*data is damaged.*Received: damaged\.png"):
        with decode_errors_named(files):
            list(ImageReader(8, 8, 3).dataset(files, batch_size=4))
