"""MLflow tracking of studies (parent runs) and trials (nested child runs).

The interface is `extf.tracking.protocol.Tracker`; `extf.tracking.mlflow_tracker` implements it on MLflow (and
`make_tracker` picks the tracker a config asks for), `extf.tracking.process` runs that in a process of its own.
"""

from extf.tracking.protocol import NullTracker, Tracker


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


__all__ = ["NullTracker", "Tracker", "flatten"]
