"""A model family given as the project's own callable: `model._target_: myproj.models.build_model`.

The callable is called as `fn(model_cfg, meta)`: the model section of the config (with the trial's hyperparameters
applied) and the dataset's Meta (task, modality, input_shape, class_names, extra). It returns a `keras.Model` that
takes the dataset's raw inputs; uncompiled, extf compiles it as its own families (optimizer, the task's loss and
metrics, model.loss / model.metrics); compiled, it is used as it is.
"""

from __future__ import annotations

from extf.config.instantiate import call_user, resolve
from extf.errors import UserCodeError


def is_user_model(model_cfg) -> bool:
    return "_target_" in model_cfg


def build(cfg, meta, compile_like_extf):
    """The project's model for this config; `compile_like_extf(model)` compiles an uncompiled one."""
    import keras

    target = str(cfg.model["_target_"])
    key = "model._target_"
    fn = resolve(target, key, tuple(cfg.get("allow_targets") or ()))
    model = call_user(fn, target, key, cfg.model, meta)
    if not isinstance(model, keras.Model):
        raise UserCodeError(f"the project's {target} ({key}) returned {type(model).__name__}, not a keras.Model. "
                            f"Expected it to return the model, e.g. `return keras.Model(inputs, outputs)` (compiled "
                            f"or not). Received: {type(model).__module__}.{type(model).__qualname__}")
    expected = tuple(int(d) for d in meta.input_shape)
    got = tuple(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) else None
    if got is not None and len(model.inputs) == 1 and (len(got) != len(expected) or any(
            g is not None and g != e for g, e in zip(got, expected))):
        raise UserCodeError(f"the project's {target} ({key}) returned a model whose input has shape {got}, but "
                            f"dataset '{meta.name}' gives inputs of shape {expected}. Build the input from "
                            f"meta.input_shape: keras.Input(shape=meta.input_shape). Received: input shape {got}")
    if meta.task == "multiclass" and model.outputs and model.outputs[0].shape[-1] not in (None, meta.n_classes):
        raise UserCodeError(f"the project's {target} ({key}) returned a model with {model.outputs[0].shape[-1]} "
                            f"outputs, but dataset '{meta.name}' has {meta.n_classes} classes. End it with "
                            f"keras.layers.Dense(meta.n_classes, activation='softmax'). Received: output shape "
                            f"{tuple(model.outputs[0].shape)}")
    if not getattr(model, "compiled", False):
        compile_like_extf(model)
    return model
