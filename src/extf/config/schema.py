"""Structured-config schemas: one dataclass per option of each config group.

A group's `name` key selects its schema, so `model=cnn` is checked against `CnnConf`. Merging the composed YAML into
the schema rejects unknown keys and wrong types before TensorFlow is imported. Value ranges are checked in
`extf.config.validate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MISSING = "???"


# --------------------------------------------------------------------------- datasets
@dataclass
class DatasetConf:
    name: str = MISSING
    val_fraction: float = 0.16
    test_fraction: float = 0.2


@dataclass
class TabularDatasetConf(DatasetConf):
    standardize: bool = True  # z-score features with statistics of the training split only


@dataclass
class DigitsConf(DatasetConf):
    pass


@dataclass
class SineConf(DatasetConf):
    n_points: int = 1200
    window: int = 20
    period: float = 50.0  # time steps per sine cycle
    noise: float = 0.05


@dataclass
class NabiyaConf(DatasetConf):
    window: int = 4
    features: str = "index"  # index: one feature (note index / vocabulary size); pitch_duration: two features
    path: str | None = None  # defaults to the melody shipped with extf
    repeats: int = 1  # the song played this many times in a row (the test split is then a part heard before)


@dataclass
class ShapesConf(DatasetConf):
    n_samples: int = 600
    image_size: int = 32  # height = width, in pixels; at least 8
    max_shapes: int = 3  # each image has 1 to max_shapes circles, squares and triangles
    noise: float = 0.1  # standard deviation of the Gaussian pixel noise (shapes are >= 0.2 brighter than background)


@dataclass
class CsvConf(DatasetConf):
    path: str = MISSING  # a CSV (delimited text with a header row) or a .parquet file
    target: str = MISSING
    features: list[str] | None = None  # default: every column but the target
    task: str = "auto"  # auto | binary | multiclass | regression
    delimiter: str = ","
    standardize: bool = True
    drop: list[str] = field(default_factory=list)  # columns to leave out
    categorical: list[str] | None = None  # columns that are categories even if they hold numbers (text always is)
    na_values: list[str] = field(default_factory=list)  # more cell values that mean "missing" (besides NA, empty...)
    max_categories: int = 10000  # a category column with more distinct values is an error: drop or hash it
    hash_buckets: dict[str, int] | None = None  # column: buckets, for very many categories


@dataclass
class NpzConf(DatasetConf):
    path: str = MISSING
    x_key: str = "x"
    y_key: str = "y"
    task: str = "auto"
    standardize: bool = False


@dataclass
class ImageDirConf(DatasetConf):
    path: str = MISSING  # a folder with one sub-folder of images per class
    height: int = 32
    width: int = 32
    color_mode: str = "grayscale"  # grayscale (1 channel) | rgb (3 channels)
    skip_bad_files: bool = False  # true: leave out (and count) files that cannot be decoded instead of stopping


DATASETS: dict[str, type] = {
    "digits": DigitsConf,
    "iris": TabularDatasetConf,
    "wine": TabularDatasetConf,
    "breast_cancer": TabularDatasetConf,
    "sine": SineConf,
    "nabiya": NabiyaConf,
    "shapes": ShapesConf,
    "csv": CsvConf,
    "npz": NpzConf,
    "image_dir": ImageDirConf,
}


# --------------------------------------------------------------------------- models
@dataclass
class ModelConf:
    name: str = MISSING
    loss: str | None = None  # default follows the task
    metrics: list[str] | None = None  # default follows the task


@dataclass
class MlpConf(ModelConf):
    units: int = 64  # units of the first hidden layer, and of the others unless units_<i> is set
    num_layers: int = 2
    units_1: int | None = None  # units of hidden layer 1 (0-based); null: `units`
    units_2: int | None = None
    units_3: int | None = None
    activation: str = "relu"
    kernel_initializer: str = "glorot_uniform"
    dropout: float = 0.0
    batch_norm: bool = False
    batch_norm_momentum: float = 0.9  # moving statistics' momentum (Keras: 0.99, for large datasets)


@dataclass
class CnnConf(ModelConf):
    filters: int = 32  # doubled in each further block
    num_blocks: int = 2
    kernel_size: int = 3
    padding: str = "same"
    data_format: str = "channels_last"
    pool_size: int = 2
    activation: str = "relu"
    kernel_initializer: str = "glorot_uniform"
    batch_norm: bool = False
    batch_norm_momentum: float = 0.9  # moving statistics' momentum (Keras: 0.99, for large datasets)
    dense_units: int = 64
    dropout: float = 0.25


@dataclass
class RnnConf(ModelConf):
    cell: str = "lstm"
    units: int = 32
    num_layers: int = 1
    dropout: float = 0.0
    stateful: bool = False
    dense_units: int = 0  # 0: no hidden dense layer before the output


@dataclass
class FcnConf(ModelConf):
    filters: int = 16  # filters of the first level, doubled at each level down
    depth: int = 2  # down/up levels; the image height and width must be divisible by 2**depth
    kernel_size: int = 3
    activation: str = "relu"
    batch_norm: bool = True
    batch_norm_momentum: float = 0.9  # moving statistics' momentum (Keras: 0.99, for large datasets)
    dropout: float = 0.0  # after each pooling and the bottleneck
    upsampling: str = "transpose"  # transpose (learned Conv2DTranspose) | nearest | bilinear (UpSampling2D)


@dataclass
class AutoencoderConf(ModelConf):
    kind: str = "dense"  # dense (any data, flattened) | conv (images: strided Conv2D down, Conv2DTranspose up)
    latent_dim: int = 16  # size of the code between encoder and decoder
    units: int = 128  # dense: first encoder layer, halved in each further one (never below latent_dim)
    filters: int = 16  # conv: first encoder layer, doubled in each further one
    num_layers: int = 2  # encoder layers (the decoder mirrors them); conv: each halves the image height and width
    kernel_size: int = 3  # conv only
    activation: str = "relu"


@dataclass
class Conv1dConf(ModelConf):
    filters: int = 32  # doubled in each further block
    num_blocks: int = 2
    kernel_size: int = 3
    padding: str = "same"  # same | valid (each block shortens the sequence by kernel_size - 1)
    pool_size: int = 2  # MaxPooling1D after each block; 1: no pooling
    activation: str = "relu"
    dropout: float = 0.0  # after each block
    pooling: str = "global_average"  # global_average (GlobalAveragePooling1D) | flatten: the head's input
    dense_units: int = 32  # 0: no hidden dense layer before the output


MODELS: dict[str, type] = {"mlp": MlpConf, "cnn": CnnConf, "rnn": RnnConf, "fcn": FcnConf,
                           "autoencoder": AutoencoderConf, "conv1d": Conv1dConf}


# --------------------------------------------------------------------------- optimizers
@dataclass
class OptimizerConf:
    _target_: str = MISSING
    name: str = MISSING
    learning_rate: float = 0.001


@dataclass
class AdamConf(OptimizerConf):
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7
    amsgrad: bool = False


@dataclass
class SgdConf(OptimizerConf):
    momentum: float = 0.0
    nesterov: bool = False


@dataclass
class RmspropConf(OptimizerConf):
    rho: float = 0.9
    momentum: float = 0.0
    epsilon: float = 1e-7


@dataclass
class AdagradConf(OptimizerConf):
    initial_accumulator_value: float = 0.1
    epsilon: float = 1e-7


OPTIMIZERS: dict[str, type] = {"adam": AdamConf, "sgd": SgdConf, "rmsprop": RmspropConf, "adagrad": AdagradConf}


# --------------------------------------------------------------------------- the rest
@dataclass
class TrainerConf:
    epochs: int = 30
    batch_size: int = 32
    verbosity: int = 0  # Keras fit verbose: 0 silent, 1 progress bar, 2 one line per epoch
    shuffle: bool = True  # ignored (False) for stateful RNNs, whose samples must stay in order


@dataclass
class AugmentationConf:
    name: str = "none"  # none | image (ImageDataGenerator options as Keras preprocessing layers, training only)
    rotation_range: float = 0.0  # degrees, random angle in [-r, r]
    width_shift_range: float = 0.0  # fraction of the width, in [0, 1)
    height_shift_range: float = 0.0  # fraction of the height, in [0, 1)
    shear_range: float = 0.0  # radians, random shear angle in [-s, s]
    zoom_range: float = 0.0  # zoom factor in [1 - x, 1 + x], x in [0, 1)
    horizontal_flip: bool = False
    vertical_flip: bool = False
    rescale: float | None = None  # pixel multiplier, applied in training and inference
    fill_mode: str = "nearest"  # nearest | constant | reflect | wrap
    cval: float = 0.0  # fill value for fill_mode=constant
    seed: int | None = None


@dataclass
class EvaluationConf:
    threshold: float = 0.5  # decision threshold of binary tasks, in [0, 1]
    plots: bool = True  # ROC, PR, confusion matrix / predicted vs actual PNGs on the study's parent run


@dataclass
class TrackingConf:
    name: str = MISSING
    enabled: bool = True
    tracking_uri: str | None = None
    artifact_root: str | None = None
    log_model: bool = True  # log the MLflow Keras model (signature + input example)
    # an MLflow server (http:// URIs): how long to wait for an answer and how often to retry before giving up
    request_timeout: int = 30
    request_retries: int = 5


@dataclass
class ObjectiveConf:
    name: str = "auto"  # auto: val_accuracy (classification), val_mean_iou (segmentation), val_loss (regression)
    direction: str = "auto"  # auto | min | max


@dataclass
class TunerConf:
    name: str = MISSING
    max_trials: int = 1
    executions_per_trial: int = 1
    seed: int | None = None  # default: the top-level seed
    overwrite: bool = False
    objective: ObjectiveConf = field(default_factory=ObjectiveConf)
    max_retries_per_trial: int = 0
    max_consecutive_failed_trials: int = 3
    # bayesian
    num_initial_points: int | None = None
    alpha: float = 1e-4
    beta: float = 2.6
    # hyperband: epochs per trial come from the bracket, up to max_epochs (default: trainer.epochs)
    max_epochs: int | None = None
    factor: int = 3
    hyperband_iterations: int = 1
    # distributed search (keras-tuner's chief oracle + worker processes); 0 = one process
    workers: int = 0
    oracle_host: str = "127.0.0.1"  # where the chief oracle listens; 0.0.0.0 only to let other machines in
    oracle_port: int = 0  # 0: a free port
    threads_per_worker: int | None = None  # TensorFlow intra/inter-op threads per worker (default: cores / workers)
    max_worker_restarts: int = 3  # a worker killed by a signal is restarted (its trial runs again) this often


@dataclass
class PathsConf:
    root_dir: str = "."
    mlruns_dir: str = MISSING
    output_dir: str = MISSING  # Hydra's run directory (logs, .hydra/)
    study_dir: str | None = None  # tuner state + best model; set by the CLI (stable per study, for resume)


@dataclass
class TopConf:
    """Keys at the top of config.yaml; groups are checked with their own schemas."""

    seed: int = 42
    experiment_name: str = "extf"
    determinism: bool = False  # tf.config.experimental.enable_op_determinism()
    command: str = "train"
    run_id: str | None = None  # evaluate / predict: the study's parent run
    init_from: str | None = None  # train / tune: start from this study's model weights (the notes' retraining)
    input: str | None = None  # predict: a .csv, a .npy or a folder of images
    output: str | None = None  # predict: where the predictions CSV goes
    unsafe_load: bool = False  # evaluate / predict: load .keras files with safe_mode=False (Lambda layers run code)
    allow_targets: list[str] = field(default_factory=list)  # the project's packages `_target_` may name (extf.yaml)
    search_space: dict[str, Any] = field(default_factory=dict)
    callbacks: dict[str, Any] = field(default_factory=dict)
