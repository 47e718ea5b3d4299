"""After the search: the best trial's model (its architecture with its saved weights, no retraining; after k-fold
cross-validation, retrained on train + validation for the epochs the folds found), evaluated ONCE on the test split,
its artifacts written to <study>/artifacts and logged on the study's parent run."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from extf.objective import Objective
from extf.tuning.pareto import Objectives
from extf.tuning.recorder import fmt
from extf.tuning.state import BEST_WEIGHTS, StudyState, write_json_atomic


class FinalTest:
    """The best trial of `state` tested and logged; `run()` returns its test metrics."""

    def __init__(self, cfg: DictConfig, splits, objective: Objective, state: StudyState, tracker,
                 parent_id: str | None, say=print, objectives: Objectives | None = None):
        from extf.tuning.space import apply_hyperparameters

        self.cfg = cfg
        self.study_splits = splits  # train / validation / test as the trials saw them (the baseline's too)
        self.cross_validated = bool(cfg.tuner.get("cv_folds"))
        if self.cross_validated:  # the final model learns from train + validation (statistics refitted on both)
            from extf.data.folds import final_splits

            splits = final_splits(splits, OmegaConf.to_container(cfg.dataset, resolve=True))
        self.splits = splits
        self.say = say
        self.baseline_line: str | None = None  # what the baseline scored, for the study's summary
        self.objective = objective
        self.objectives = objectives or Objectives()  # several objectives give a Pareto front
        self.state = state
        self.tracker = tracker
        self.parent_id = parent_id
        self.best_cfg = apply_hyperparameters(cfg, state.best_hp)
        self.art = state.dir / "artifacts"

    def run(self) -> dict[str, float]:
        import keras

        keras.backend.clear_session()
        model = self.final_model()
        test_metrics, outputs = self.evaluate(model)
        model_files, table = self.write_model(model)
        self.log_model(model, model_files, table)  # MLflow logs it (a pipelined call) while the plots are drawn
        self.write_artifacts(outputs)
        self.log(test_metrics)
        self.baseline_line = self.baseline()
        return test_metrics

    def baseline(self) -> str | None:
        """A scikit-learn baseline on the same training split, scored on validation and once on test, beside the
        study (extf.evaluation.baseline): the console and the parent run say whether the search beat it."""
        if not self.cfg.evaluation.baseline:
            return None
        from extf.evaluation.baseline import fit_baseline

        base = fit_baseline(self.study_splits, seed=int(self.cfg.seed))
        if base is None:
            return None
        scores = {**base.val, **base.test}
        self.tracker.log_metrics(self.parent_id, {f"baseline_{k}": v for k, v in scores.items()})
        self.tracker.set_tags(self.parent_id, {"extf.baseline": base.name})
        return f"baseline ({base.name}, same training split): " + "  ".join(f"{k}={v:.4f}" for k, v in scores.items())

    def final_model(self):
        """The best trial's architecture with its saved weights (retrained, after cross-validation)."""
        from extf.models import build_model

        if self.cross_validated:
            return self._retrained()
        model = build_model(self.best_cfg, self.splits.meta)
        with warnings.catch_warnings():  # the fresh optimizer has no slots yet; only the layer weights matter here
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            model.load_weights(self.state.dir / "best" / BEST_WEIGHTS)
        if getattr(model, "optimizer", None) is not None and not model.optimizer.built:
            # saved with its optimizer's variables, so that keras.models.load_model / mlflow.keras.load_model of the
            # logged model do not warn "Skipping variable loading for optimizer" (2 saved variables vs 14 built)
            model.optimizer.build(model.trainable_variables)
        return model

    def _retrained(self):
        """After k-fold cross-validation: the best hyperparameters trained on train + validation for the best trial's
        `cv_epochs`, the mean over its folds of the epochs behind each fold's kept model (early stopping's restored
        epoch; without it, every epoch the fold trained). No early stopping: nothing is held out any more."""
        import keras

        from extf.models import build_model
        from extf.tuning.trial import fit

        cfg = OmegaConf.create(OmegaConf.to_container(self.best_cfg, resolve=True))
        cfg.trainer.epochs = int(self.state.best_trial.get("cv_epochs") or cfg.trainer.epochs)
        keras.utils.set_random_seed(self.cfg.seed)
        model = build_model(cfg, self.splits.meta)
        fit(model, cfg, self.splits, [], seed=self.cfg.seed)
        self.say(f"final model: the best trial's hyperparameters retrained on train + validation "
                 f"({len(self.splits.train)} samples) for {cfg.trainer.epochs} epochs (the mean of its folds' "
                 f"kept epochs)")
        self.tracker.set_tags(self.parent_id, {"extf.final_model": "retrained on train+validation",
                                               "extf.final_epochs": cfg.trainer.epochs})
        return model

    def evaluate(self, model) -> tuple[dict[str, float], object]:
        """The only place the test split is used: once, after the search. (test_ metrics, the model's outputs)"""
        from extf.evaluation.evaluate import evaluate_model

        cfg = self.best_cfg
        metrics, outputs = evaluate_model(model, self.splits, "test", self.splits.meta, cfg.evaluation.threshold,
                                          cfg.trainer.batch_size, stateful=bool(cfg.model.get("stateful")))
        return {f"test_{k}": v for k, v in metrics.items()}, outputs

    def write_model(self, model) -> tuple[dict, dict | None]:
        """<study>/artifacts, afresh, with the model files and dataset.json first (the MLflow model is logged from
        them). Returns the model files and the table spec (None unless the data is a table)."""
        from extf.models.io import save_model_files

        cfg, art, meta = self.cfg, self.art, self.splits.meta
        if art.exists():
            shutil.rmtree(art)
        art.mkdir()
        model_files = save_model_files(model, art / "model_files")
        table = table_spec(meta, cfg.evaluation.threshold)
        write_json_atomic(art / "dataset.json", {
            "name": meta.name, "task": meta.task, "modality": meta.modality, "input_shape": list(meta.input_shape),
            "class_names": list(meta.class_names), "threshold": cfg.evaluation.threshold,
            "feature_names": meta.extra.get("feature_names"), **({"table": table} if table else {})})
        return model_files, table

    def write_artifacts(self, outputs) -> None:
        """The rest of <study>/artifacts: config, search space, leaderboard, history and curves, test plots."""
        from extf.evaluation.plots import learning_curves
        from extf.tracking.provenance import freeze

        cfg, art, meta = self.cfg, self.art, self.splits.meta
        (art / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True), encoding="utf-8")
        (art / "requirements-freeze.txt").write_text(freeze(), encoding="utf-8")
        (art / "search_space.yaml").write_text(OmegaConf.to_yaml(cfg.search_space), encoding="utf-8")
        _write_leaderboard(self.state.ranked(self.objective), art / "leaderboard.csv")
        history = self.state.best_history()
        _write_history(history, art / "history.csv")
        learning_curves(history, art / "learning_curves.png", self.objective.name, self._best_epoch(history))
        if cfg.evaluation.plots:
            from extf.evaluation.evaluate import write_plots

            write_plots(meta, self.splits.test.y, outputs, art / "plots", cfg.evaluation.threshold,
                        x=self.splits.test.inputs(4))  # the segmentation overlay shows 4
        if self.objectives.several:
            self._write_front()

    def _write_front(self) -> None:
        """pareto_front.json and plots/pareto_front.png (shown by `extf report`); the front's size on the parent."""
        from extf.tuning.pareto import front_chart, front_record

        record = front_record(self.state.trials, self.objectives, self.state.best_trial)
        write_json_atomic(self.art / "pareto_front.json", record)
        (self.art / "plots").mkdir(exist_ok=True)
        front_chart(record, self.art / "plots" / "pareto_front.png")
        on_front = [p["trial_id"] for p in record["trials"] if p["on_front"]]
        self.tracker.log_metrics(self.parent_id, {"pareto_front_size": len(on_front)})
        self.say(f"Pareto front of {' / '.join(g['name'] for g in record['objectives'])}: trial_id "
                 f"{', '.join(on_front)}; tested: trial_id {record['selected_trial']} (tuner.select="
                 f"{self.objectives.rule}; pareto_front.json, plots/pareto_front.png)")

    def _best_epoch(self, history: dict) -> int | None:
        if not history or self.objective.name not in history:
            return None
        from extf.tuning.trial import best_value

        return best_value(history, self.objective.name, self.objective.direction)[1]

    def log_model(self, model, model_files: dict, table: dict | None) -> None:
        """The MLflow Keras model on the parent run (tracking.log_model), from the saved .keras file."""
        if self.cfg.tracking.log_model:
            import keras

            example, prediction = self._example(model, table)
            self.tracker.log_keras_model(self.parent_id, model_files["keras"], example, prediction, keras.__version__,
                                         keras.backend.backend(), table=table)

    def log(self, test_metrics: dict) -> None:
        """The parent run: test metrics, the best trial (tags) and the artifacts."""
        state, name, parent = self.state, self.objective.name, self.parent_id
        best = state.best_trial
        self.tracker.log_metrics(parent, {**test_metrics, f"best_{name}": state.best_value,
                                          "finished_trials": sum(t["status"] == "FINISHED" for t in state.trials)})
        self.tracker.set_tags(parent, {
            "best_trial_id": best["trial_id"],
            "mlflow.note.content": f"best trial {best['trial_id']}: {name}={fmt(state.best_value)}; "
                                   + ", ".join(f"{k}={fmt(v)}" for k, v in test_metrics.items()),
        })
        # tags, not params: a study extended later (a larger tuner.max_trials) may find another best trial
        self.tracker.replace_tags(parent, "best.", {f"best.{k}": v for k, v in state.best_hp.items()})
        self.tracker.log_artifacts(parent, self.art)

    def _example(self, model, table: dict | None):
        """The input example of the logged model and its prediction: raw rows and the predictions table for a
        table, else the first training inputs (a stateful model's whole batch)."""
        n = self.best_cfg.trainer.batch_size if self.best_cfg.model.get("stateful") else 5
        if table:
            from extf.data.rows import TableModel
            from extf.data.tables import head_frame

            example = head_frame(self.splits.train, n, table)
            return example, TableModel(model, table).predict(example)
        example = self.splits.train.inputs(n)
        return example, model.predict(example, verbose=0, batch_size=len(example))


def table_spec(meta, threshold: float) -> dict | None:
    """What the logged model of a table needs to take raw rows (extf.data.rows), or None for other data."""
    if "table" not in meta.extra:
        return None
    return {**meta.extra["table"], "task": meta.task, "class_names": list(meta.class_names),
            "threshold": float(threshold)}


def _write_leaderboard(ranked_trials: list[dict], path: Path) -> None:
    import pandas as pd

    pd.DataFrame(ranked_trials).to_csv(path, index=False)


def _write_history(history: dict, path: Path) -> None:
    import pandas as pd

    df = pd.DataFrame(history)
    df.insert(0, "epoch", range(len(df)))
    df.to_csv(path, index=False)
