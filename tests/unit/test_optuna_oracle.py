"""The Optuna samplers behind keras-tuner's oracle interface (tuner=tpe, tuner=cmaes), driven as keras-tuner's
tuners drive an oracle: create_trial -> update_trial -> end_trial, saved to and reloaded from a directory."""

from __future__ import annotations

import math

import pytest

from extf.tuning.seeds import derived_seed


def space():
    import keras_tuner as kt

    hp = kt.HyperParameters()
    hp.Float("x", 0.0, 1.0)
    hp.Float("lr", 1e-4, 1e-1, sampling="log")
    hp.Int("layers", 1, 3)
    with hp.conditional_scope("layers", [3]):
        hp.Int("units_3", 8, 64, step=8)
    hp.Choice("act", ["relu", "tanh"])
    hp.Fixed("batch", 32)
    return hp


def score(values: dict) -> float:
    """A smooth objective to maximize, best at x = 0.3 with relu; the other parameters only add a little."""
    return -((values["x"] - 0.3) ** 2) - (0.05 if values["act"] == "tanh" else 0.0) - 0.001 * values["layers"]


def make_oracle(tmp_path, sampler="tpe", seed=1, max_trials=30, hp=None, **kwargs):
    import keras_tuner as kt

    from extf.tuning.optuna_oracle import OptunaOracle

    oracle = OptunaOracle(sampler=sampler, objective=kt.Objective("val_score", "max"), max_trials=max_trials,
                          hyperparameters=hp or space(), tune_new_entries=False, seed=seed, **kwargs)
    oracle._set_project_dir(str(tmp_path), "search")
    return oracle


def run(oracle, n: int, objective=score, fail=()) -> list[dict]:
    from keras_tuner.engine import trial as kt_trial

    seen = []
    for _ in range(n):
        trial = oracle.create_trial("tuner0")
        if trial.status == kt_trial.TrialStatus.STOPPED:
            break
        values = dict(trial.hyperparameters.values)
        seen.append(values)
        if trial.trial_id in fail:
            trial.status = kt_trial.TrialStatus.FAILED
        else:
            oracle.update_trial(trial.trial_id, {"val_score": objective(values)}, step=0)
            trial.status = kt_trial.TrialStatus.COMPLETED
        oracle.end_trial(trial)
    return seen


def test_each_kind_of_hyperparameter_maps_to_its_optuna_distribution():
    import keras_tuner as kt
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from extf.tuning.optuna_oracle import distribution

    by_name = {hp.name: hp for hp in space().space}
    assert distribution(by_name["x"]) == FloatDistribution(0.0, 1.0)
    assert distribution(by_name["lr"]) == FloatDistribution(1e-4, 1e-1, log=True)
    assert distribution(by_name["units_3"]) == IntDistribution(8, 64, step=8)
    assert distribution(by_name["act"]) == CategoricalDistribution(["relu", "tanh"])
    assert distribution(by_name["batch"]) is None  # fixed: not searched
    hp = kt.HyperParameters()
    hp.Boolean("flag")
    hp.Int("n", 2, 64, step=2, sampling="log")  # keras-tuner's multiplicative step: no Optuna twin
    flag, n = hp.space
    assert distribution(flag) == CategoricalDistribution([False, True])
    assert distribution(n) is None


def test_conditional_parameters_are_suggested_only_while_their_parent_allows_them(tmp_path):
    seen = run(make_oracle(tmp_path), 15)
    assert seen and all(("units_3" in v) == (v["layers"] == 3) for v in seen), seen
    assert all(v["batch"] == 32 and 1e-4 <= v["lr"] <= 1e-1 for v in seen)
    assert {v["layers"] for v in seen} == {1, 2, 3}


def test_tpe_finds_a_better_region_than_its_random_start(tmp_path):
    oracle = make_oracle(tmp_path, num_initial_points=8, max_trials=40)
    seen = run(oracle, 40)
    start, later = [score(v) for v in seen[:8]], [score(v) for v in seen[-12:]]
    assert sorted(later)[len(later) // 2] > sorted(start)[len(start) // 2], (start, later)  # medians
    best = max(seen, key=score)
    assert abs(best["x"] - 0.3) < 0.05 and best["act"] == "relu", best


def test_cmaes_runs_the_same_space(tmp_path):
    seen = run(make_oracle(tmp_path, sampler="cmaes", max_trials=12), 12)
    assert len(seen) == 12 and max(score(v) for v in seen) > -0.1


def test_same_seed_same_trials_other_seed_other_trials(tmp_path):
    a = run(make_oracle(tmp_path / "a", seed=3), 6)
    b = run(make_oracle(tmp_path / "b", seed=3), 6)
    c = run(make_oracle(tmp_path / "c", seed=4), 6)
    assert a == b
    assert not {str(sorted(v.items())) for v in a} & {str(sorted(v.items())) for v in c}


def test_seeds_are_hashed_so_neighbouring_study_seeds_are_unrelated():
    seeds = [derived_seed(s, "tpe", 0) for s in range(1, 11)]
    assert len(set(seeds)) == 10 and all(0 <= s < 2**31 for s in seeds)
    assert derived_seed(None, "tpe") is None
    assert derived_seed(1, "tpe", 0) == derived_seed(1, "tpe", 0) != derived_seed(1, "tpe", 1)


def test_failed_trials_are_told_as_failed_and_the_search_goes_on(tmp_path):
    oracle = make_oracle(tmp_path, max_trials=6)
    seen = run(oracle, 6, fail={"0", "1"})
    assert len(seen) == 6
    states = [t.state.name for t in oracle._study.trials]
    assert states[:2] == ["FAIL", "FAIL"] and states[2:] == ["COMPLETE"] * 4


def test_a_resumed_study_tells_optuna_its_ended_trials_and_draws_new_ones(tmp_path):
    first = make_oracle(tmp_path, seed=5, max_trials=10)
    before = run(first, 6)
    first.save()

    resumed = make_oracle(tmp_path, seed=5, max_trials=10)
    resumed.reload()
    after = run(resumed, 10)
    assert len(after) == 4  # 10 trials in all
    study = resumed._study
    assert len(study.trials) == 10
    told = [t.value for t in study.trials[:6]]
    assert told == pytest.approx([score(v) for v in before])  # the same trials, in the order they ended
    assert all(v not in before for v in after)


def test_a_small_discrete_space_stops_when_every_combination_was_tried(tmp_path):
    import keras_tuner as kt

    hp = kt.HyperParameters()
    hp.Choice("act", ["relu", "tanh"])
    hp.Boolean("bn")
    seen = run(make_oracle(tmp_path, hp=hp, max_trials=10), 10, objective=lambda v: float(v["bn"]))
    assert len(seen) == 4 and len({(v["act"], v["bn"]) for v in seen}) == 4


def test_a_parameter_without_an_optuna_twin_is_searched_through_keras_tuners_probability(tmp_path):
    import keras_tuner as kt

    from extf.tuning.optuna_oracle import PROB

    hp = kt.HyperParameters()
    hp.Int("n", 2, 64, step=2, sampling="log")
    oracle = make_oracle(tmp_path, hp=hp, max_trials=8)
    seen = run(oracle, 8, objective=lambda v: -abs(math.log2(v["n"]) - 3))
    assert {v["n"] for v in seen} <= {2, 4, 8, 16, 32, 64}
    assert all(name.endswith(PROB) for t in oracle._study.trials for name in t.params)


def test_nsga2_is_told_every_objective_at_the_trials_best_step(tmp_path):
    from keras_tuner.engine import trial as kt_trial

    from extf.tuning.pareto import Goal, pareto_front

    goals = [Goal("val_score", "max"), Goal("params", "min")]
    oracle = make_oracle(tmp_path, sampler="nsga2", max_trials=16, goals=goals, num_initial_points=4)
    seen = []
    for _ in range(16):
        trial = oracle.create_trial("tuner0")
        values = dict(trial.hyperparameters.values)
        params = 1000 * values["layers"]
        # the best epoch (1) is not the last one: the values told are those of epoch 1
        for step, s in enumerate([score(values) - 0.1, score(values), score(values) - 0.2]):
            oracle.update_trial(trial.trial_id, {"val_score": s, "params": params}, step=step)
        trial.status = kt_trial.TrialStatus.COMPLETED
        oracle.end_trial(trial)
        seen.append({"val_score": score(values), "params": params})
    told = {(round(t.values[0], 9), t.values[1]) for t in oracle._study.trials}  # duplicates told again: a set
    assert told == {(round(s["val_score"], 9), s["params"]) for s in seen}
    front = {(round(t.values[0], 9), t.values[1]) for t in oracle._study.best_trials}
    assert front == {(round(s["val_score"], 9), s["params"]) for s in pareto_front(seen, goals)}


def test_a_multi_objective_sampler_needs_several_objectives_and_the_others_take_one(tmp_path):
    from extf.tuning.pareto import Goal

    with pytest.raises(ValueError, match="needs several objectives"):
        make_oracle(tmp_path, sampler="nsga2", goals=[Goal("val_score", "max")])
    with pytest.raises(ValueError, match="takes no several objectives"):
        make_oracle(tmp_path, sampler="tpe", goals=[Goal("val_score", "max"), Goal("params", "min")])
