"""Model files: `.keras`, architecture JSON + weights, summary text, plot_model PNG. Loads use safe_mode."""

from __future__ import annotations

import shutil
from pathlib import Path

PLOT_MODEL_HINT = ("plot_model skipped: Graphviz `dot` was not found. Install it (Debian/Ubuntu: "
                   "apt-get install graphviz; macOS: brew install graphviz) and `pip install pydot`.")


def save_model_files(model, directory: Path) -> dict[str, Path]:
    """Write every saved form of the model into `directory`; returns what was written."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "keras": directory / "model.keras",
        "architecture": directory / "model.architecture.json",
        "weights": directory / "model.weights.h5",
        "summary": directory / "summary.txt",
    }
    model.save(files["keras"])
    files["architecture"].write_text(model.to_json(indent=2), encoding="utf-8")
    model.save_weights(files["weights"])
    lines: list[str] = []
    model.summary(print_fn=lambda line, *a, **k: lines.append(line))
    files["summary"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    png = directory / "model.png"
    if plot_model(model, png):
        files["plot"] = png
    return files


def plot_model(model, path: Path) -> bool:
    """plot_model(show_shapes=True) when pydot and Graphviz exist; otherwise one line saying how to get them."""
    if shutil.which("dot") is None:
        print(PLOT_MODEL_HINT)
        return False
    import keras

    try:
        keras.utils.plot_model(model, to_file=str(path), show_shapes=True)
    except (ImportError, OSError) as e:
        print(f"plot_model skipped: {e}")
        return False
    return path.exists()


def load_model(path: str | Path, unsafe: bool = False, source: str | None = None):
    """Load a `.keras` file with safe_mode=True (no arbitrary code from Lambda layers). `unsafe=True` (the config's
    `unsafe_load: true`) passes safe_mode=False, with a warning; a refused file raises a ConfigError saying so."""
    import sys
    import warnings

    import keras

    from extf.errors import ConfigError

    source = source or str(path)
    if unsafe:
        print(f"warning: unsafe_load=true: loading {source} with safe_mode=False; its Lambda layers run the Python "
              f"code stored in the file. Only do this for model files you trust.", file=sys.stderr, flush=True)
    try:
        with warnings.catch_warnings():  # the optimizer's slots are rebuilt lazily; its saved state is not needed
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            return keras.models.load_model(path, safe_mode=not unsafe)
    except TypeError as e:
        if "Could not locate" not in str(e):
            raise
        import re

        name = re.search(r"Could not locate \w+ '([^']+)'", str(e))
        raise ConfigError(f"Cannot load the model of {source}: it uses {name.group(1) if name else 'a custom object'}, "
                          f"a class or function of the project that Keras does not know. Decorate it with "
                          f"@keras.saving.register_keras_serializable() in the module of the model's build function "
                          f"(extf imports that module first), then train again. Received: "
                          f"{' '.join(str(e).split()[:4])} ...") from None
    except ValueError as e:
        if unsafe or "safe_mode" not in str(e):
            raise
        raise ConfigError(f"Refused to load the model of {source}: it has a Lambda layer, whose Python code would "
                          f"run when the file is loaded (arbitrary code execution), so models load with "
                          f"safe_mode=True. If you trust where the file comes from, opt in with unsafe_load=true. "
                          f"Received: {source}") from None


def load_weights_into(model, weights_path, source: str) -> None:
    """Start from a logged model's weights; a model of another shape is a configuration error."""
    import warnings

    from extf.errors import ConfigError

    try:
        with warnings.catch_warnings():  # Keras warns about each layer it cannot fill; the error below says it once
            warnings.simplefilter("ignore", UserWarning)
            model.load_weights(weights_path)
    except (ValueError, KeyError) as e:
        raise ConfigError(f"The weights of {source} do not fit the model this config builds ({_mismatch(e)}). Use "
                          f"the same model, dataset shape and hyperparameters as that run (its config.yaml "
                          f"artifact). Received: {source}") from None


def _mismatch(e: BaseException) -> str:
    """Keras' load error in one line: how many layers, and the first variable whose shape differs (Keras' own
    message prints the variable's values)."""
    import re

    text = str(e)
    count = re.search(r"A total of (\d+) objects could not be loaded", text)
    path = re.search(r"Target variable: <Variable path=([^,>]+)", text)
    shapes = re.search(r"variable\.shape=(\([^)]*\)), Received: value\.shape=(\([^)]*\))", text)
    if count and path and shapes:
        return (f"{count.group(1)} layer(s) could not be loaded; the first, {path.group(1)}, has shape "
                f"{shapes.group(1)} here and {shapes.group(2)} in the weights")
    first = text.strip().splitlines()[0] if text.strip() else type(e).__name__
    return first if len(first) <= 300 else first[:297] + "..."
