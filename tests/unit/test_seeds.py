"""Oracle seeds are hashed from the study seed: studies with nearby seeds draw unrelated trials."""

from __future__ import annotations


def draws(oracle, tmp_path, n=10) -> list[str]:
    from keras_tuner.engine import trial as kt_trial

    oracle._set_project_dir(str(tmp_path), "search")
    out = []
    for _ in range(n):
        trial = oracle.create_trial("t")
        out.append(repr(sorted(trial.hyperparameters.values.items())))
        oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5}, step=0)
        trial.status = kt_trial.TrialStatus.COMPLETED
        oracle.end_trial(trial)
    return out


def test_studies_with_seeds_1_to_10_share_no_trial(make_cfg, tmp_path):
    from extf.tuning.oracle import make_oracle
    from extf.tuning.space import parse_space

    seen = {}
    for seed in range(1, 11):
        cfg = make_cfg(["model=cnn", f"seed={seed}"], command="tune")
        specs = parse_space(cfg.search_space, cfg)
        objective = type("O", (), {"name": "val_accuracy", "direction": "max"})()
        for trial in draws(make_oracle(cfg, specs, objective), tmp_path / str(seed)):
            assert trial not in seen, f"seed {seed} repeats a trial of seed {seen[trial]}: {trial}"
            seen[trial] = seed


def test_keras_tuners_raw_seeds_do_repeat_shifted_trials(make_cfg, tmp_path):
    """Why the seeds are hashed: with raw seeds s and s + #hyperparameters, RandomSearch repeats trials."""
    import keras_tuner as kt

    from extf.tuning.space import declare, parse_space

    cfg = make_cfg(["model=cnn"], command="tune")
    specs = parse_space(cfg.search_space, cfg)
    n_hps = len([s for s in specs if s.type != "fixed" and not s.when])

    def raw(seed):
        return kt.oracles.RandomSearchOracle(objective=kt.Objective("val_accuracy", "max"), max_trials=10,
                                             hyperparameters=declare(specs), tune_new_entries=False, seed=seed)

    a, b = draws(raw(1), tmp_path / "a"), draws(raw(1 + n_hps), tmp_path / "b")
    assert set(a) & set(b)
