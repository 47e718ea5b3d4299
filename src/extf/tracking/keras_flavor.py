"""An MLflow Keras model from a saved `.keras` file, without importing Keras.

The tracking process (extf.tracking.process) logs the study's best model but never imports TensorFlow (3 s and
~0.4 GB): `Model.log(..., flavor=this module)` writes the directory `mlflow.keras.save_model` writes for a Keras 3
model saved as `.keras` (`save_exported_model=False`) — data/model.keras, data/keras_module.txt, the `keras` and
`python_function` flavors, the environment files, signature and input example — so `mlflow.keras.load_model` and
`mlflow.pyfunc.load_model` read it as their own. Mirrors mlflow/keras/save.py (MLflow 3.x); tests/integration
load the logged model with both loaders.
"""

from __future__ import annotations

import os
import shutil

import yaml

FLAVOR_NAME = "keras"  # the flavor mlflow.keras.load_model looks for
DATA_DIR = "data"


TABLE_LOADER = "extf_table_rows"  # extf.data.rows, copied into the model as code/extf_table_rows.py


def save_model(path: str, mlflow_model, keras_file: str, keras_version: str, keras_backend: str,
               signature=None, input_example=None, pip_requirements=None, table: dict | None = None,
               **_model_log_kwargs) -> None:
    """`table`: the model takes a table's columns; its python_function flavor is then extf.data.rows (shipped in
    the model's code/ folder, with the table's description in data/table.json), which takes raw rows."""
    from mlflow import pyfunc
    from mlflow.models.model import MLMODEL_FILE_NAME
    from mlflow.models.utils import _save_example
    from mlflow.utils.environment import (
        _CONDA_ENV_FILE_NAME,
        _CONSTRAINTS_FILE_NAME,
        _PYTHON_ENV_FILE_NAME,
        _REQUIREMENTS_FILE_NAME,
        _process_pip_requirements,
        _PythonEnv,
    )
    from mlflow.utils.file_utils import get_total_file_size, write_to

    os.makedirs(os.path.join(path, DATA_DIR))
    if signature is not None:
        mlflow_model.signature = signature
    if input_example is not None:
        _save_example(mlflow_model, input_example, path)
    with open(os.path.join(path, DATA_DIR, "keras_module.txt"), "w") as f:
        f.write("keras")
    shutil.copyfile(keras_file, os.path.join(path, DATA_DIR, "model.keras"))
    mlflow_model.add_flavor(FLAVOR_NAME, data=DATA_DIR, keras_version=keras_version, keras_backend=keras_backend,
                            save_exported_model=False)
    if table is None:
        pyfunc.add_to_model(mlflow_model, loader_module="mlflow.keras", conda_env=_CONDA_ENV_FILE_NAME,
                            python_env=_PYTHON_ENV_FILE_NAME)
    else:
        import json

        from extf.data import rows

        with open(os.path.join(path, DATA_DIR, rows.SPEC_FILE), "w", encoding="utf-8") as f:
            json.dump(table, f, indent=1)
        os.makedirs(os.path.join(path, "code"))
        shutil.copyfile(rows.__file__, os.path.join(path, "code", f"{TABLE_LOADER}.py"))
        pyfunc.add_to_model(mlflow_model, loader_module=TABLE_LOADER, data=DATA_DIR, code="code",
                            conda_env=_CONDA_ENV_FILE_NAME, python_env=_PYTHON_ENV_FILE_NAME)
    if size := get_total_file_size(path):
        mlflow_model.model_size_bytes = size
    mlflow_model.save(os.path.join(path, MLMODEL_FILE_NAME))

    conda_env, requirements, constraints = _process_pip_requirements(None, pip_requirements)
    with open(os.path.join(path, _CONDA_ENV_FILE_NAME), "w") as f:
        yaml.safe_dump(conda_env, stream=f, default_flow_style=False)
    if constraints:
        write_to(os.path.join(path, _CONSTRAINTS_FILE_NAME), "\n".join(constraints))
    write_to(os.path.join(path, _REQUIREMENTS_FILE_NAME), "\n".join(requirements))
    _PythonEnv.current().to_yaml(os.path.join(path, _PYTHON_ENV_FILE_NAME))
