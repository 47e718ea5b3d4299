"""Tables as users have them: category columns, missing cells and a string target, encoded inside the model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from extf.data import load_dataset
from extf.data.rows import RowsError, model_inputs
from extf.errors import ConfigError, DataError

CSV_DEFAULTS = {"name": "csv", "val_fraction": 0.16, "test_fraction": 0.2, "features": None, "task": "auto",
                "delimiter": ",", "standardize": True, "drop": [], "categorical": None, "na_values": [],
                "max_categories": 10000, "hash_buckets": {}}


def csv_cfg(path, **extra) -> dict:
    return {**CSV_DEFAULTS, "path": str(path), "target": "species", **extra}


def penguins(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """A penguins-like table: string categories, NA cells, a constant and an empty column, a string target."""
    rng = np.random.default_rng(seed)
    species = rng.choice(["Adelie", "Chinstrap", "Gentoo"], n)
    bill = np.where(species == "Adelie", 38.8, np.where(species == "Chinstrap", 48.8, 47.5)) + rng.normal(0, 2, n)
    bill[::13] = np.nan
    sex = rng.choice(["male", "female"], n).astype(object)
    sex[::17] = None
    island = np.where(species == "Gentoo", "Biscoe", rng.choice(["Dream", "Torgersen"], n))
    return pd.DataFrame({"species": species, "island": island, "bill_length_mm": bill.round(1),
                         "year": rng.choice([2007, 2008, 2009], n), "sex": sex, "colony": "A", "notes": np.nan})


@pytest.fixture
def penguin_csv(tmp_path):
    path = tmp_path / "penguins.csv"
    penguins().to_csv(path, index=False)
    return path


def test_a_messy_csv_loads_as_columns_with_training_split_statistics(penguin_csv, capsys):
    splits = load_dataset(csv_cfg(penguin_csv), seed=0)
    meta = splits.meta
    assert meta.task == "multiclass" and meta.class_names == ("Adelie", "Chinstrap", "Gentoo")
    out = capsys.readouterr().out
    assert "left out column 'colony': it has the same value ('A') in every row" in out
    assert "left out column 'notes': every cell is missing" in out
    columns = {c["name"]: c for c in meta.extra["table"]["columns"]}
    assert list(columns) == ["island", "bill_length_mm", "year", "sex"]
    assert columns["island"]["kind"] == "category" and columns["year"]["kind"] == "numeric"
    train_bill = splits.train.x["bill_length_mm"]
    assert columns["bill_length_mm"]["mean"] == pytest.approx(float(np.nanmean(train_bill)))  # training split only
    assert columns["bill_length_mm"]["missing_indicator"] is True
    assert set(columns["sex"]["vocabulary"]) == set(splits.train.x["sex"])  # "" (missing) is a category here
    assert "" in columns["sex"]["vocabulary"] and columns["island"]["encoding"] == "one_hot"


def test_listed_categorical_numbers_and_rows_without_a_target(tmp_path, capsys):
    df = penguins()
    df.loc[[3, 8], "species"] = None
    path = tmp_path / "p.csv"
    df.to_csv(path, index=False)
    splits = load_dataset(csv_cfg(path, categorical=["year"]), seed=0)
    assert "left out 2 row(s) whose target 'species' is missing (rows 3, 8)" in capsys.readouterr().out
    assert sum(len(s) for s in (splits.train, splits.val, splits.test)) == len(df) - 2
    year = next(c for c in splits.meta.extra["table"]["columns"] if c["name"] == "year")
    assert year["kind"] == "category" and set(year["vocabulary"]) <= {"2007", "2008", "2009"}


def test_a_numeric_csv_without_missing_cells_stays_one_array(tmp_path):
    path = tmp_path / "n.csv"
    rng = np.random.default_rng(0)
    pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60), "species": rng.integers(0, 2, 60)}).to_csv(
        path, index=False)
    splits = load_dataset(csv_cfg(path), seed=0)
    assert isinstance(splits.train.x, np.ndarray) and "table" not in splits.meta.extra
    assert "feature_mean" in splits.meta.extra


@pytest.mark.parametrize("column, values, needles", [
    ("age", [str(i) for i in range(38)] + ["unknown", "?"], ["mixes numbers and text", "dataset.na_values",
                                                              "dataset.categorical=[age]"]),
])
def test_mixed_types_are_refused(tmp_path, column, values, needles):
    path = tmp_path / "m.csv"
    pd.DataFrame({column: values, "species": ["a", "b"] * 20}).to_csv(path, index=False)
    with pytest.raises(DataError) as e:
        load_dataset(csv_cfg(path), seed=0)
    assert all(n in str(e.value) for n in needles) and "Received: age=" in str(e.value)
    splits = load_dataset(csv_cfg(path, na_values=["unknown", "?"]), seed=0)  # what the message says to do
    assert splits.meta.extra["table"]["columns"][0]["kind"] == "numeric"


def test_very_many_categories_are_refused_or_hashed(tmp_path):
    path = tmp_path / "ids.csv"
    pd.DataFrame({"user": [f"u{i}" for i in range(300)], "x": np.arange(300.0),
                  "species": ["a", "b", "c"] * 100}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"'user' of ids.csv has 300 distinct values.*dataset.drop=\[user\].*"
                                        r"dataset.hash_buckets=\{user: 1024\}"):
        load_dataset(csv_cfg(path, max_categories=100), seed=0)
    splits = load_dataset(csv_cfg(path, max_categories=100, hash_buckets={"user": 64}), seed=0)
    user = splits.meta.extra["table"]["columns"][0]
    assert user["encoding"] == "hash" and user["hash_bins"] == 64


def test_a_hashed_column_and_parquet(tmp_path, make_cfg):
    from extf.data.rows import TableModel
    from extf.models import build_model

    path = tmp_path / "ids.parquet"
    rng = np.random.default_rng(0)
    pd.DataFrame({"user": [f"u{i}" for i in range(300)], "x": rng.normal(size=300),
                  "species": ["a", "b", "c"] * 100}).to_parquet(path)
    cfg = make_cfg(["dataset=csv", f"dataset.path={path}", "dataset.target=species", "model=mlp",
                    "dataset.max_categories=100", "dataset.hash_buckets={user: 16}"])
    splits = load_dataset(cfg.dataset, cfg.seed)
    assert splits.meta.extra["table"]["columns"][0]["encoding"] == "hash"
    model = build_model(cfg, splits.meta)
    assert "hash_user" in [layer.name for layer in model.layers]
    spec = {**splits.meta.extra["table"], "task": "multiclass", "class_names": ["a", "b", "c"]}
    answer = TableModel(model, spec).predict(pd.DataFrame({"user": ["u1", "never-seen"], "x": [0.1, None]}))
    assert np.isfinite(answer.filter(like="prob_").to_numpy()).all() and len(answer) == 2


def test_a_target_with_no_values_is_refused(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"a": np.arange(40.0), "species": [None] * 40}).to_csv(path, index=False)
    with pytest.raises(DataError, match="Target column 'species' in t.csv has no values"):
        load_dataset(csv_cfg(path), seed=0)


def test_raw_rows_to_model_inputs_and_their_errors():
    spec = {"columns": [{"name": "island", "kind": "category"}, {"name": "bill", "kind": "numeric"}],
            "target": "species", "known_columns": ["island", "bill", "species", "colony"]}
    rows = pd.DataFrame({"island": ["Dream", None, 3.0], "bill": [1.5, None, 2], "species": ["a", "b", "c"],
                         "colony": ["A"] * 3})
    inputs = model_inputs(rows, spec)
    assert inputs["island"].tolist() == ["Dream", "", "3"] and np.isnan(inputs["bill"][1])
    with pytest.raises(RowsError, match=r"lacks column\(s\) \['bill'\]"):
        model_inputs(rows.drop(columns="bill"), spec)
    with pytest.raises(RowsError, match=r"column\(s\) \['colour'\] that the training data did not have"):
        model_inputs(rows.assign(colour="red"), spec)
    with pytest.raises(RowsError, match=r"'bill' of the rows must hold numbers.*Received: bill=\['abc'\]"):
        model_inputs(rows.assign(bill=["abc", "1", None]), spec)


def test_the_model_takes_raw_rows_and_round_trips_with_safe_mode(penguin_csv, make_cfg, tmp_path):
    import keras

    from extf.data.rows import TableModel
    from extf.data.tables import head_frame
    from extf.models import build_model

    cfg = make_cfg(["dataset=csv", f"dataset.path={penguin_csv}", "dataset.target=species", "model=mlp",
                    "trainer.epochs=1"])
    splits = load_dataset(cfg.dataset, cfg.seed)
    keras.utils.set_random_seed(0)
    model = build_model(cfg, splits.meta)  # seeded initial weights: the round trip needs no training
    spec = {**splits.meta.extra["table"], "task": "multiclass", "class_names": list(splits.meta.class_names)}
    rows = head_frame(splits.test, 4, spec)
    rows.loc[0, "bill_length_mm"] = np.nan  # a missing number, a missing and an unseen category
    rows.loc[1, "sex"] = None
    rows.loc[2, "island"] = "Atlantis"
    before = TableModel(model, spec).predict(rows)
    assert np.isfinite(before.filter(like="prob_").to_numpy()).all()
    assert set(before["label"]) <= {"Adelie", "Chinstrap", "Gentoo"}
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    after = TableModel(loaded, spec).predict(rows)
    np.testing.assert_allclose(after.filter(like="prob_").to_numpy(), before.filter(like="prob_").to_numpy(),
                               rtol=1e-5)


def test_models_that_do_not_take_tables_say_so(penguin_csv, make_cfg):
    from extf.models import check_fits_data, prepare_splits

    for model in ("cnn", "autoencoder", "rnn"):
        cfg = make_cfg(["dataset=csv", f"dataset.path={penguin_csv}", "dataset.target=species", f"model={model}"])
        splits = load_dataset(cfg.dataset, cfg.seed)
        with pytest.raises(ConfigError, match=f"model={model} does not take a table's columns.*Use model=mlp"):
            check_fits_data(cfg.model, prepare_splits(cfg.model, splits).meta)


def test_the_data_file_is_part_of_the_study_identity(penguin_csv, make_cfg):
    from extf.data.lineage import dataset_inputs
    from extf.tuning.study import study_identity

    overrides = ["dataset=csv", f"dataset.path={penguin_csv}", "dataset.target=species", "model=mlp"]
    first = study_identity(make_cfg(overrides, command="tune"))
    assert first == study_identity(make_cfg(overrides, command="tune"))  # same file: the same study
    with open(penguin_csv, "a") as f:
        f.write("Adelie,Dream,40.0,2008,male,A,\n")
    second = study_identity(make_cfg(overrides, command="tune"))
    assert second[1] == first[1] and second[2] != first[2] and second[0] != first[0]
    iris = make_cfg(["dataset=iris", "model=mlp"], command="tune")
    assert study_identity(iris)[2] is None and study_identity(iris)[0] == study_identity(iris)[1]
    cfg = make_cfg(overrides, command="tune")
    inputs = dataset_inputs(cfg.dataset, load_dataset(cfg.dataset, cfg.seed), second[2])
    assert [i["context"] for i in inputs] == ["train", "validation", "test"]
    assert len({i["digest"] for i in inputs}) == 3 and inputs[0]["name"] == "penguins.csv"
    assert ("island", "string") in inputs[0]["columns"] and inputs[0]["source"]["uri"].startswith("file://")
