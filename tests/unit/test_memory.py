"""A long study must not keep every trial's traced graphs alive (P6 in bench/ measures the process as a whole).
extf.tuning.tuner imports TensorFlow: imported by the tests, not when the file is collected."""

from __future__ import annotations

import gc

import numpy as np
import pytest


def _fit_tiny_model():
    import keras

    keras.backend.clear_session()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    model.fit(x, np.arange(32) % 3, validation_data=(x, np.arange(32) % 3), epochs=1, verbose=0)


def _custom_gradients(registry) -> set:
    return {k for k in registry if str(k).startswith("CustomGradient-")}


@pytest.mark.slow  # trains: not in make test-fast
def test_trial_leaves_no_custom_gradients_behind():
    from extf.tuning.tuner import _gradient_registry, released_custom_gradients

    registry = _gradient_registry()
    assert registry is not None, "TensorFlow's gradient registry moved: released_custom_gradients is now a no-op"
    start = _custom_gradients(registry)
    with released_custom_gradients():
        _fit_tiny_model()
        added = _custom_gradients(registry) - start
    # the traced train step registers gradient functions (that is what leaked) and the block removes exactly those
    assert added, "fitting a model registered no CustomGradient: the leak this guards against is gone upstream"
    assert _custom_gradients(registry) == start


@pytest.mark.slow  # trains: not in make test-fast
def test_traced_graphs_are_freed_after_each_trial():
    from tensorflow.python.framework.func_graph import FuncGraph

    from extf.tuning.tuner import released_custom_gradients

    def graphs() -> int:
        gc.collect()
        return sum(isinstance(o, FuncGraph) for o in gc.get_objects())

    with released_custom_gradients():
        _fit_tiny_model()
    after_one = graphs()
    for _ in range(3):
        with released_custom_gradients():
            _fit_tiny_model()
    assert graphs() <= after_one


def test_startup_objects_are_frozen_for_the_block_only():
    """What the imports made stays out of the search's garbage collections (a 20-trial digits study spent 6.6 s of
    48 in them), and is collectable again afterwards (a sweep runs several studies in one process)."""
    from extf.console import startup_objects_frozen

    assert gc.get_freeze_count() == 0
    with startup_objects_frozen():
        assert gc.get_freeze_count() > 1000  # at least pytest's and extf's own modules' objects
    assert gc.get_freeze_count() == 0


def test_the_search_runs_with_the_startup_objects_frozen(monkeypatch):
    import keras_tuner as kt

    from extf.tuning.tuner import StudyTuner

    seen = []
    monkeypatch.setattr(kt.engine.base_tuner.BaseTuner, "search",
                        lambda self, *args, **kwargs: seen.append(gc.get_freeze_count()))
    StudyTuner.search(object.__new__(StudyTuner))
    assert seen and seen[0] > 1000, "keras-tuner's search ran with nothing frozen"
    assert gc.get_freeze_count() == 0
