"""`extf train` end to end: the MLflow layout, the model round trip, determinism, failures that end FAILED."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

from tests.conftest import assert_clean_error, extf_in_process, running_runs

pytestmark = pytest.mark.slow


def client_for(root):
    from mlflow import MlflowClient

    return MlflowClient(f"sqlite:///{root}/mlruns/mlflow.db")


def runs_of(client, experiment="extf"):
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("extf.kind") == "study"]
    children = [r for r in runs if r.data.tags.get("extf.kind") == "trial"]
    return parents, children


def test_train_logs_study_trial_and_model(tmp_path):
    proc = extf_in_process(["train", "dataset=iris", "model=mlp", "trainer.epochs=8",
                            "callbacks.early_stopping.patience=20"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test (evaluated once)" in proc.stdout and "make ui" in proc.stdout
    client = client_for(tmp_path)
    (parent,), (child,) = runs_of(client)
    assert parent.info.status == child.info.status == "FINISHED"
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    # the resolved config as dotted params, test metrics on the parent only
    assert parent.data.params["model.units"] == "64"
    assert parent.data.params["callbacks.early_stopping.patience"] == "20"
    assert {"test_accuracy", "test_loss", "best_val_accuracy"} <= set(parent.data.metrics)
    assert not any(k.startswith("test_") for k in child.data.metrics)
    # per-epoch metrics on the trial run
    history = client.get_metric_history(child.info.run_id, "val_accuracy")
    assert sorted(m.step for m in history) == list(range(8))
    assert len(client.get_metric_history(child.info.run_id, "loss")) == 8
    arts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"config.yaml", "leaderboard.csv", "history.csv", "learning_curves.png", "model_files",
            "requirements-freeze.txt"} <= arts
    # reproducibility: the code and package versions the study ran on
    assert parent.data.tags["version.tensorflow"] and parent.data.tags["version.keras-tuner"]
    assert parent.data.tags["git_commit"]
    model_files = {a.path for a in client.list_artifacts(parent.info.run_id, "model_files")}
    assert {"model_files/model.keras", "model_files/model.architecture.json", "model_files/model.weights.h5",
            "model_files/summary.txt", "model_files/model.png"} <= model_files
    assert running_runs(tmp_path / "mlruns") == []

    # the model reloads (safe_mode) and reproduces the logged test accuracy; the MLflow model predicts the same
    import keras
    import mlflow.keras

    from extf.data import load_dataset
    from extf.models.io import load_model

    local = client.download_artifacts(parent.info.run_id, "model_files/model.keras", str(tmp_path / "dl"))
    model = load_model(local)
    cfg_ds = {"name": "iris", "val_fraction": 0.16, "test_fraction": 0.2, "standardize": True}
    test = load_dataset(cfg_ds, seed=42).test
    results = model.evaluate(test.x, test.y, verbose=0, return_dict=True)
    assert results["accuracy"] == pytest.approx(parent.data.metrics["test_accuracy"], abs=1e-6)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    with warnings.catch_warnings(record=True) as caught:  # saved with its optimizer's variables: nothing skipped
        warnings.simplefilter("always")
        mlflow_model = mlflow.keras.load_model(f"runs:/{parent.info.run_id}/model")
    assert not [w for w in caught if "Skipping variable loading" in str(w.message)]
    np.testing.assert_allclose(mlflow_model.predict(test.x, verbose=0), model.predict(test.x, verbose=0), atol=1e-6)
    served = mlflow.pyfunc.load_model(f"runs:/{parent.info.run_id}/model")  # the generic loader, for serving
    assert served.metadata.get_input_schema().input_types()[0] == np.float32
    np.testing.assert_allclose(served.predict(test.x.astype(np.float32)), model.predict(test.x, verbose=0), atol=1e-6)
    keras.backend.clear_session()


def test_same_seed_same_metrics(make_cfg):
    from extf.tuning.study import Study

    def once(seed):
        cfg = make_cfg(["dataset=wine", "model=mlp", "trainer.epochs=4", "tracking=none", "evaluation.plots=false",
                        f"seed={seed}"])
        return Study(cfg, out=io.StringIO()).run()["test_metrics"]

    a, b, c = once(7), once(7), once(8)
    assert a == b
    assert a != c


def test_an_image_folder_trains_the_same_for_the_same_seed(make_cfg, tmp_path):
    """The streamed pipeline is seeded (split of the file list, shuffling) and reads the test files in order."""
    from extf.tuning.study import Study
    from tests.unit.test_image_folders import write_folder

    folder = write_folder(tmp_path / "photos", {"dark": 16, "mid": 16, "light": 16})

    def once(seed):
        cfg = make_cfg(["dataset=image_dir", f"dataset.path={folder}", "dataset.height=8", "dataset.width=8",
                        "model=cnn", "model.num_blocks=1", "trainer.epochs=2", "trainer.batch_size=8",
                        "tracking=none", "callbacks=none", "tuner.overwrite=true", "evaluation.plots=false",
                        f"seed={seed}"])
        return Study(cfg, out=io.StringIO()).run()["test_metrics"]

    a, b, c = once(7), once(7), once(8)
    assert a == b and "test_accuracy" in a
    assert a != c


def test_diverging_training_ends_failed(tmp_path):
    # in this process: the message and the runs' status are the subject, not the process
    proc = extf_in_process(["train", "dataset=iris", "model=mlp", "optimizer=sgd", "optimizer.learning_rate=1e12",
                            "trainer.epochs=5"], tmp_path)
    assert_clean_error(proc, "diverged", "learning_rate")
    (parent,), (child,) = runs_of(client_for(tmp_path))
    assert parent.info.status == child.info.status == "FAILED"
    assert "diverged" in child.data.tags["extf.failure_reason"]
    assert running_runs(tmp_path / "mlruns") == []


def test_stateful_lstm_trains_in_order(make_cfg, monkeypatch):
    """A stateful LSTM carries its state from one batch to the next, so it must get the training windows in time
    order, one per batch, and start every epoch from a zero state: Keras' fit is watched to check that it gets
    batches of one window each, in time order (each one the previous one moved by a note) and the same order in
    every epoch, and a state that is zero at the start of each epoch and not at its end.

    Mutation check (2026-12-01): passing shuffle=True for stateful models in tuning/trial.fit, dropping its
    StateResetter, or building the RNN with stateful=False each fail this test."""
    import keras
    import numpy as np

    from extf.tuning.study import Study

    calls, states = [], []

    class Probe(keras.callbacks.Callback):  # last in the list: runs after extf's own callbacks
        def _state(self):
            return sum(float(np.abs(np.asarray(v)).sum()) for layer in self.model.layers
                       if getattr(layer, "stateful", False) for v in layer.states)

        def on_epoch_begin(self, epoch, logs=None):
            states.append(("begin", epoch, self._state()))

        def on_epoch_end(self, epoch, logs=None):
            states.append(("end", epoch, self._state()))

    real_fit = keras.Model.fit

    def watched_fit(model, x=None, y=None, **kwargs):
        epochs = [[np.asarray(inputs) for inputs, _ in x] for _ in range(2)]  # the tf.data batches of two epochs
        calls.append({"epochs": epochs,
                      "stateful": [layer.name for layer in model.layers if getattr(layer, "stateful", False)]})
        kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), Probe()]
        return real_fit(model, x, y, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", watched_fit)
    cfg = make_cfg(["dataset=nabiya", "model=rnn", "model.cell=lstm", "model.stateful=true", "trainer.batch_size=1",
                    "trainer.epochs=2", "tracking=none", "evaluation.plots=false"])
    summary = Study(cfg, out=io.StringIO()).run()
    assert "test_accuracy" in summary["test_metrics"]
    (call,) = calls
    assert call["stateful"], "the RNN layers are not stateful"
    first, second = call["epochs"]
    assert all(len(batch) == 1 for batch in first), "the batches are not of the model's fixed batch size 1"
    assert all(np.array_equal(a, b) for a, b in zip(first, second)), "the batches are reshuffled between epochs"
    x = np.concatenate(first)
    assert len(x) > 10 and np.array_equal(x[1:, :-1], x[:-1, 1:]), "the training windows are not in time order"
    begins = [v for kind, _, v in states if kind == "begin"]
    ends = [v for kind, _, v in states if kind == "end"]
    assert len(begins) == 2 and all(v == 0.0 for v in begins), states
    assert all(v > 0.0 for v in ends), states


# the README's default (digits + cnn) reaches 0.95: test_inference.py, on the study its inference tests use


def test_batch_norm_cnn_validates_as_well_as_it_trains(make_cfg):
    """With few steps per epoch (digits: ~36), Keras' BatchNormalization momentum 0.99 left the moving statistics
    that validation uses far behind training: 0.99 train vs 0.53 val accuracy after 8 epochs, so a search's
    batch_norm=true trials looked hopeless. The default momentum is 0.9 (model.batch_norm_momentum)."""
    from extf.tuning.study import Study

    cfg = make_cfg(["dataset=digits", "model=cnn", "model.batch_norm=true", "trainer.epochs=8", "callbacks=none",
                    "tracking=none", "evaluation.plots=false"])
    summary = Study(cfg, out=io.StringIO()).run()
    assert summary["trials"][0]["val_accuracy"] >= 0.9, summary["trials"]
