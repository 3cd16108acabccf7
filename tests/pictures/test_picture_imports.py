"""pictures/ reads only the wire format, the state names, captures and logs: never the stack."""

import ast
import pathlib

ALLOWED = ("synack.wire", "synack.tcp.states", "synack.link.pcap", "synack.log.jsonl", "synack.pictures")
SRC = pathlib.Path(__file__).resolve().parents[2] / "src" / "synack" / "pictures"


def test_pictures_import_only_what_they_may():
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
                     else [])
            for mod in names:
                if mod.startswith("synack") and not mod.startswith(ALLOWED):
                    bad.append(f"{path.name}:{node.lineno} imports {mod}")
    assert not bad, "\n".join(bad)
