"""The README's Python examples and the docstring examples run as written."""

from __future__ import annotations

import doctest
import importlib
import re
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_has_examples():
    assert len(PYTHON_BLOCKS) >= 2


def _skip_without_optional_packages(code: str) -> None:
    """Skip, as the tests of optional parts do, when an example imports a package that is not installed."""
    for name in re.findall(r"^\s*(?:import|from)\s+([\w.]+)", code, flags=re.MULTILINE):
        if name == "fastlstm.dask":
            pytest.importorskip("dask")
            pytest.importorskip("distributed")
        root = name.split(".")[0]
        if root not in sys.stdlib_module_names and root not in ("numpy", "fastlstm"):
            pytest.importorskip(root)


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_readme_example_runs(index, tmp_path, monkeypatch):
    _skip_without_optional_packages(PYTHON_BLOCKS[index])
    monkeypatch.chdir(tmp_path)
    code = compile(PYTHON_BLOCKS[index], f"README.md[python block {index}]", "exec")
    exec(code, {"__name__": "readme"})  # noqa: S102 -- running the README's own examples is the test


# The docstring examples run as pytest's doctests (--doctest-modules in pyproject.toml, which
# also collects src/fastlstm); these tests keep the examples from going missing unnoticed.
def test_doctests_are_collected(pytestconfig):
    assert pytestconfig.getoption("doctestmodules")
    assert "src/fastlstm" in pytestconfig.getini("testpaths")


@pytest.mark.parametrize(
    "name",
    [
        "fastlstm",
        "fastlstm.cell",
        "fastlstm.model",
        "fastlstm.rnn",
        "fastlstm.warmup",
        "fastlstm.convert.keras",
        "fastlstm.convert.onnx",
        "fastlstm.convert.pytorch",
        "fastlstm.convert.tensorflow",
        "fastlstm.io.native",
        "fastlstm.scoring",
        "fastlstm.dask",
    ],
)
def test_module_has_docstring_examples(name):
    if name == "fastlstm.dask":
        pytest.importorskip("dask")
        pytest.importorskip("distributed")
    if name == "fastlstm.convert.onnx":
        pytest.importorskip("onnx")
    module = importlib.import_module(name)
    examples = [test for test in doctest.DocTestFinder().find(module) if test.examples]
    assert examples, f"{name} has no docstring examples"
