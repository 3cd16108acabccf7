from synack.tcp.config import TcpConfig
from synack.tcp.states import State
from synack.testing import Dialogue

ISS, IRS = 2**32 - 3, 2**32 - 5


def test_data_both_ways_across_the_wrap():
    d = Dialogue.established(iss=ISS, irs=IRS, config=TcpConfig(ack_delay=None))
    d.peer("P.", seq=IRS + 1, ack=ISS + 1, data=b"hello world")
    d.expect(".", seq=ISS + 1, ack=IRS + 12)
    assert d.conn.receive(64) == b"hello world"
    d.conn.send(b"8 bytes!")
    d.expect("P.", seq=ISS + 1, ack=IRS + 12, data=b"8 bytes!")
    d.peer(".", seq=IRS + 12, ack=ISS + 9)
    d.expect_nothing(until=60.0)


def test_four_way_close_active():
    d = Dialogue.established(iss=ISS, irs=IRS)
    d.conn.close(d.now)
    assert d.state is State.FIN_WAIT_1
    d.expect("F.", seq=ISS + 1, ack=IRS + 1)
    d.peer(".", seq=IRS + 1, ack=ISS + 2)
    assert d.state is State.FIN_WAIT_2
    d.peer("F.", seq=IRS + 1, ack=ISS + 2)
    d.expect(".", seq=ISS + 2, ack=IRS + 2)
    assert d.state is State.TIME_WAIT
    d.expect_nothing(until=59.9)
    assert d.state is State.TIME_WAIT
    d.advance(0.2)
    assert d.state is State.CLOSED


def test_syn_retransmit_and_timeout():
    d = Dialogue(iss=ISS)
    d.conn.connect(0.0)
    d.expect("S", seq=ISS, at=0.0)
    t = 0.0
    rto = 1.0
    for _ in range(7):                      # syn_retries=7 by default: over 3 minutes (MUST-23)
        t += rto
        d.expect("S", seq=ISS, at=t)
        rto = min(rto * 2, 120.0)           # max_rto
    d.run_until(t + rto - 0.1)
    assert d.state is State.SYN_SENT
    d.run_until(t + rto)
    assert d.state is State.CLOSED and t + rto == 247.0
    assert "TimedOut" in d.event_types()
