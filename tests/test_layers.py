"""The sans-IO layers import no I/O, clocks or randomness, and nothing from a higher layer."""

import ast
import pathlib

import pytest

SRC = pathlib.Path(__file__).resolve().parents[1] / "src" / "synack"
FORBIDDEN_STDLIB = {"socket", "asyncio", "threading", "select", "selectors", "time", "random", "os", "subprocess"}
ORDER = ["wire", "tcp", "stack"]          # each may import only itself and the ones before it
HIGHER = {"link", "sim", "api", "http", "pictures", "pdrill", "log", "cli"}


def _imports(path: pathlib.Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


@pytest.mark.parametrize("layer", ORDER)
def test_sans_io_layer_imports(layer):
    allowed = set(ORDER[: ORDER.index(layer) + 1])
    bad = []
    for path in sorted((SRC / layer).rglob("*.py")):
        for lineno, mod in _imports(path):
            top = mod.split(".")[0]
            if top in FORBIDDEN_STDLIB:
                bad.append(f"{path.relative_to(SRC)}:{lineno} imports {mod}")
            if top == "synack":
                sub = mod.split(".")[1] if "." in mod else ""
                if sub and sub not in allowed:
                    bad.append(f"{path.relative_to(SRC)}:{lineno} imports higher layer {mod}")
    assert not bad, "\n".join(bad)
