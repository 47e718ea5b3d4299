"""Recurrent network: stacked SimpleRNN / GRU / LSTM layers (return_sequences between them), optional Dense.

stateful=True keeps each sample's last state as the next sample's initial state; the input then has a fixed batch
size (batch_input_shape = (batch, timesteps, features)) and the trainer resets the states at each epoch. `l2` > 0
adds l2 * sum(w**2) of every kernel (the recurrent layers' input and recurrent kernels, the Dense layers', the output
layer's included) to the loss and val_loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from extf.config.constraints import FRACTION, NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE_INT, OneOf
from extf.config.schema import ModelConf
from extf.models.checks import check_sequences


@dataclass
class Conf(ModelConf):
    cell: str
    units: int
    num_layers: int
    dropout: float
    stateful: bool
    dense_units: int  # 0: no hidden dense layer before the output
    l2: float  # L2 penalty on every kernel (input and recurrent, Dense, the output layer's); 0: none
    constraints: ClassVar = {
        "cell": OneOf({"simple_rnn", "gru", "lstm"}), "units": POSITIVE_INT, "num_layers": POSITIVE_INT,
        "dropout": FRACTION, "dense_units": NON_NEGATIVE_INT, "l2": NON_NEGATIVE,
    }


def check(cfg, meta) -> None:
    """Sequences only."""
    check_sequences("rnn", meta)


def build(cfg, inputs):
    import keras

    from extf.models import kernel_regularizer

    cell = {"simple_rnn": keras.layers.SimpleRNN, "gru": keras.layers.GRU, "lstm": keras.layers.LSTM}[cfg.cell]
    x = inputs
    for i in range(cfg.num_layers):
        last = i == cfg.num_layers - 1
        x = cell(cfg.units, return_sequences=not last, stateful=cfg.stateful, dropout=cfg.dropout,
                 kernel_regularizer=kernel_regularizer(cfg), recurrent_regularizer=kernel_regularizer(cfg),
                 name=f"{cfg.cell}_{i}")(x)
    if cfg.dense_units > 0:
        x = keras.layers.Dense(cfg.dense_units, activation="relu", kernel_regularizer=kernel_regularizer(cfg),
                               name="dense")(x)
    return x


def reset_states(model) -> None:
    """Reset the states of every stateful layer (Keras 3 models have no reset_states of their own)."""
    for layer in model.layers:
        if getattr(layer, "stateful", False) and hasattr(layer, "reset_state"):
            layer.reset_state()
