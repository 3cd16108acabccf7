from pathlib import Path

from synack.pictures import fsm
from synack.tcp.states import TRANSITIONS, State

DOC = Path(__file__).resolve().parents[2] / "docs" / "state-diagram.md"


def test_committed_diagram_is_generated_from_the_table():
    assert DOC.read_text() == fsm.document(), "regenerate: python -m synack.pictures.fsm > docs/state-diagram.md"


def test_every_state_is_reachable_from_closed_in_the_table():
    seen, todo = {State.CLOSED}, [State.CLOSED]
    while todo:
        s = todo.pop()
        for (src, _), dst in TRANSITIONS.items():
            if src is s and dst not in seen:
                seen.add(dst)
                todo.append(dst)
    assert seen == set(State)
