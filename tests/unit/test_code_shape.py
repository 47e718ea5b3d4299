"""The shape the engine redesign promised, kept: short functions, and classes whose attributes all appear in
__init__ (no role switched by setting attributes later)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "extf"
MAX_LINES = 60
ENGINE_CLASSES = {"Study", "StudyState", "TrialRecorder", "FinalTest", "Chief", "LocalWorkers", "RemoteWorker",
                  "StudyTuner"}


def functions():
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield path, node


def test_no_function_in_src_is_longer_than_60_lines():
    long = [f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for path, node in functions() if node.end_lineno - node.lineno + 1 > MAX_LINES]
    assert not long, "split these functions: " + ", ".join(long)


def attributes_set_outside_init(cls: ast.ClassDef) -> set[str]:
    def assigned(fn) -> set[str]:
        names = set()
        for node in ast.walk(fn):
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else [])
            for target in targets:
                for t in ast.walk(target):
                    if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                        names.add(t.attr)
        return names

    methods = [n for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    in_init = set().union(*(assigned(m) for m in methods if m.name == "__init__"))
    class_level = {t.id for n in cls.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                   for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)}
    later = set().union(*(assigned(m) for m in methods if m.name != "__init__"))
    return later - in_init - class_level


@pytest.mark.parametrize("name", sorted(ENGINE_CLASSES))
def test_engine_classes_set_every_attribute_first_in_init(name):
    found = [(path, node) for path in sorted((SRC / "tuning").glob("*.py"))
             for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.ClassDef) and node.name == name]
    assert found, f"class {name} is not in extf.tuning any more: update ENGINE_CLASSES"
    for path, cls in found:
        assert not attributes_set_outside_init(cls), (
            f"{path.name}: {name} sets {sorted(attributes_set_outside_init(cls))} outside __init__")


def test_the_checker_sees_an_attribute_first_set_later():
    cls = ast.parse("class A:\n    def __init__(self):\n        self.a = 1\n    def f(self):\n        self.b = 2\n"
                    ).body[0]
    assert attributes_set_outside_init(cls) == {"b"}
