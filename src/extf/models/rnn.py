"""Recurrent network: stacked SimpleRNN / GRU / LSTM layers (return_sequences between them), optional Dense.

stateful=True keeps each sample's last state as the next sample's initial state; the input then has a fixed batch
size (batch_input_shape = (batch, timesteps, features)) and the trainer resets the states at each epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from extf.config.constraints import FRACTION, NON_NEGATIVE_INT, POSITIVE_INT, OneOf
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
    constraints: ClassVar = {
        "cell": OneOf({"simple_rnn", "gru", "lstm"}), "units": POSITIVE_INT, "num_layers": POSITIVE_INT,
        "dropout": FRACTION, "dense_units": NON_NEGATIVE_INT,
    }


def check(cfg, meta) -> None:
    """Sequences only."""
    check_sequences("rnn", meta)


def build(cfg, inputs):
    import keras

    cell = {"simple_rnn": keras.layers.SimpleRNN, "gru": keras.layers.GRU, "lstm": keras.layers.LSTM}[cfg.cell]
    x = inputs
    for i in range(cfg.num_layers):
        last = i == cfg.num_layers - 1
        x = cell(cfg.units, return_sequences=not last, stateful=cfg.stateful, dropout=cfg.dropout,
                 name=f"{cfg.cell}_{i}")(x)
    if cfg.dense_units > 0:
        x = keras.layers.Dense(cfg.dense_units, activation="relu", name="dense")(x)
    return x


def reset_states(model) -> None:
    """Reset the states of every stateful layer (Keras 3 models have no reset_states of their own)."""
    for layer in model.layers:
        if getattr(layer, "stateful", False) and hasattr(layer, "reset_state"):
            layer.reset_state()
