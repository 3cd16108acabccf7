"""docs/congestion.md: the one-file example algorithm registers, and a transfer runs with it."""

import pathlib
import re

from synack.sim.transfer import run_transfer
from synack.tcp import congestion
from synack.tcp.config import TcpConfig

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "congestion.md"


def test_example_algorithm_from_the_docs(monkeypatch):
    monkeypatch.setattr(congestion, "_REGISTRY", dict(congestion._REGISTRY))
    code = re.search(r"```python\n# scalable.py\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S).group(1)
    ns: dict = {}
    exec(compile(code, str(DOC), "exec"), ns)
    cls = congestion.get("scalable")
    assert cls is ns["Scalable"]
    cc = cls(1000)
    cc.cwnd = cc.ssthresh = 100_000
    cc.on_ack(0.0, 1000, 100_000, 0.1)
    assert cc.cwnd == 100_010                               # +0.01 segment per acked segment
    cc.on_congestion_event(1.0, 100_000)
    assert cc.cwnd == cc.ssthresh == 87_500
    r = run_transfer(3, 200_000, 1000, loss=0.02, config=TcpConfig(cc="scalable"))
    assert r.ok, r.message
    assert {c.info().cc for c in r.connections} == {"scalable"}
