"""Metrics and plots computed after training (test split) and on logged models."""
