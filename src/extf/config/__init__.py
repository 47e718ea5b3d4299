"""Structured-config schemas and validation (no TensorFlow imports here)."""

from extf.config.validate import validate

__all__ = ["validate"]
