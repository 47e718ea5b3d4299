"""ExTensorflow: configuration-driven experiments and hyperparameter tuning for TensorFlow/Keras."""

__version__ = "0.1.0"
