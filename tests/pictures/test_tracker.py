"""The passive tracker infers both endpoints' states from packets alone (RFC 9293 Figure 5)."""

import pytest

from picture_scenarios import (ABORT, CLOSE, FIN_WITH_ACK, HANDSHAKE, LOST_FIN, REFUSED, SIMULTANEOUS_CLOSE,
                               SIMULTANEOUS_OPEN, sim_connection, write_capture)
from synack.pictures.model import load


def states(tmp_path, script):
    write_capture(tmp_path / "x.pcap", script)
    conn = load(tmp_path / "x.pcap").connection(1)
    assert all(c.inferred for c in conn.states)
    return [c.new for c in conn.states_of("A")], [c.new for c in conn.states_of("B")]


HS_A = ["SYN-SENT", "ESTABLISHED"]
HS_B = ["LISTEN", "SYN-RECEIVED", "ESTABLISHED"]


@pytest.mark.parametrize("name, script, want_a, want_b", [
    ("handshake", HANDSHAKE, HS_A, HS_B),
    ("close", CLOSE, HS_A + ["FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT"], HS_B + ["CLOSE-WAIT", "LAST-ACK", "CLOSED"]),
    ("simultaneous close", SIMULTANEOUS_CLOSE, HS_A + ["FIN-WAIT-1", "CLOSING", "TIME-WAIT"],
     HS_B + ["FIN-WAIT-1", "CLOSING", "TIME-WAIT"]),
    ("FIN carrying the ACK of FIN", FIN_WITH_ACK, HS_A + ["FIN-WAIT-1", "TIME-WAIT"],
     HS_B + ["CLOSE-WAIT", "LAST-ACK", "CLOSED"]),
    ("connection refused", REFUSED, ["SYN-SENT", "CLOSED"], []),
    ("abort", ABORT, HS_A + ["CLOSED"], HS_B + ["CLOSED"]),
    ("simultaneous open", SIMULTANEOUS_OPEN, ["SYN-SENT", "SYN-RECEIVED", "ESTABLISHED"],
     ["SYN-SENT", "SYN-RECEIVED", "ESTABLISHED"]),
    ("lost FIN, retransmitted", LOST_FIN, HS_A + ["FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT"],
     HS_B + ["CLOSE-WAIT", "LAST-ACK", "CLOSED"]),
])
def test_inferred_states(tmp_path, name, script, want_a, want_b):
    assert states(tmp_path, script) == (want_a, want_b), name


def test_causes_use_figure_5_words(tmp_path):
    write_capture(tmp_path / "x.pcap", SIMULTANEOUS_CLOSE)
    conn = load(tmp_path / "x.pcap").connection(1)
    causes = {(c.side, c.new): c.cause for c in conn.states}
    assert causes["A", "SYN-SENT"] == "active OPEN / snd SYN"
    assert causes["B", "SYN-RECEIVED"] == "rcv SYN / snd SYN,ACK"
    assert causes["A", "CLOSING"] == "rcv FIN / snd ACK"
    assert causes["B", "TIME-WAIT"] == "rcv ACK of FIN"


def test_the_lost_fin_is_received_when_its_retransmission_arrives(tmp_path):
    write_capture(tmp_path / "x.pcap", LOST_FIN)
    conn = load(tmp_path / "x.pcap").connection(1)
    close_wait = next(c for c in conn.states if c.new == "CLOSE-WAIT")
    assert close_wait.t >= 1.03


def test_inference_agrees_with_the_stacks_own_log(tmp_path):
    """The capture of a real synack connection, tracked passively, gives the states both stacks
    logged (StateChanged records), in the same order."""
    pcap, jsonl = sim_connection(tmp_path)
    inferred = load(pcap).connection(1)
    logged = load(jsonl).connection(1)
    assert not any(c.inferred for c in logged.states)
    for side in "AB":
        assert [c.new for c in inferred.states_of(side)] == [c.new for c in logged.states_of(side)], side
    assert inferred.final_state("A") == "TIME-WAIT" and inferred.final_state("B") == "CLOSED"


def test_one_sided_log_infers_the_other_side(tmp_path):
    pcap, jsonl = sim_connection(tmp_path)
    client_only = tmp_path / "client.jsonl"
    lines = jsonl.read_text().splitlines()
    keep = [lines[0]] + [ln for ln in lines[1:] if '"conn":"192.0.2.1:' in ln]
    client_only.write_text("\n".join(keep) + "\n")
    conn = load(client_only).connection(1)
    assert conn.logged == {"A"}
    assert {c.inferred for c in conn.states_of("A")} == {False}
    assert {c.inferred for c in conn.states_of("B")} == {True}
    assert [c.new for c in conn.states_of("B")] == HS_B + ["CLOSE-WAIT", "LAST-ACK", "CLOSED"]
    assert not any("lost" in s.marks for s in conn.segments)     # unknowable from one side
