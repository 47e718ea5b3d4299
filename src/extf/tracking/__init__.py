"""MLflow tracking of studies (parent runs) and trials (nested child runs)."""

from extf.tracking.mlflow_tracker import MlflowTracker, NullTracker, make_tracker


def flatten(node, prefix: str = "") -> dict:
    """A nested config as dotted keys (`model.units`), the names used for MLflow params everywhere."""
    out = {}
    if isinstance(node, dict):
        for k, v in node.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict) and v:
                out.update(flatten(v, key))
            else:
                out[key] = v
    else:
        out[prefix] = node
    return out


__all__ = ["MlflowTracker", "NullTracker", "flatten", "make_tracker"]
