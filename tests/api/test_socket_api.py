"""The blocking socket API: each stack on its private loop thread, user code in ordinary threads,
the exceptions of the ``socket`` module."""

from __future__ import annotations

import errno
import hashlib
import random
import struct
import threading
import time

import pytest

from api_helpers import A_ADDR, B_ADDR
from synack import socket as ssock
from synack.api.aio import AsyncStack
from synack.link.dgram import DgramLink
from synack.stack.host import Stack
from synack.tcp.config import TcpConfig
from synack.tcp.states import State

JOIN = 10.0


def _wait(cond, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.002)


def _server(stack, port=0, backlog=16):
    s = ssock.socket(stack=stack)
    s.settimeout(JOIN)
    s.bind((B_ADDR, port))
    s.listen(backlog)
    return s


def _pair(A, B, **client_opts):
    """A connected (client on A, server end on B) pair of blocking sockets with timeouts."""
    srv = _server(B)
    c = ssock.socket(stack=A)
    c.settimeout(JOIN)
    for (level, opt), v in client_opts.items():
        c.setsockopt(level, opt, v)
    c.connect(srv.getsockname())
    s, addr = srv.accept()
    s.settimeout(JOIN)
    assert addr == c.getsockname()
    srv.close()
    return c, s


@pytest.fixture
def blackhole():
    """A stack whose link leads nowhere: SYNs are never answered."""
    la, lb = DgramLink.pair()
    fast = TcpConfig(initial_rto=0.05, min_rto=0.05, syn_retries=2)
    A = AsyncStack.start_thread(Stack([f"{A_ADDR}/24"], secret=b"bh", config=fast), la, "synack-bh")
    yield A
    A.close()
    la.close()
    lb.close()


def test_echo(threaded_stacks):
    A, B = threaded_stacks
    srv = _server(B, 7)
    assert srv.getsockname() == (B_ADDR, 7)
    served = []

    def serve():
        conn, addr = srv.accept()
        with conn:
            served.append(addr)
            while data := conn.recv(65536):
                conn.sendall(data)

    t = threading.Thread(target=serve)
    t.start()
    with ssock.socket(ssock.AF_INET, ssock.SOCK_STREAM, stack=A) as c:
        c.settimeout(JOIN)
        assert c.connect_ex((B_ADDR, 7)) == 0
        me = c.getsockname()
        assert c.getpeername() == (B_ADDR, 7)
        data = random.Random(1).randbytes(500_000)
        sender = threading.Thread(target=lambda: (c.sendall(data), c.shutdown(ssock.SHUT_WR)))
        sender.start()
        h, n = hashlib.sha256(), 0
        buf = bytearray(10000)
        while k := c.recv_into(buf):
            h.update(buf[:k])
            n += k
        sender.join(JOIN)
        assert n == len(data) and h.digest() == hashlib.sha256(data).digest()
    t.join(JOIN)
    assert served == [me]
    srv.close()


def test_use_stack_default_makefile_and_context_manager(threaded_stacks):
    A, B = threaded_stacks
    ssock.use_stack(A)
    try:
        srv = _server(B)

        def serve():
            conn, _ = srv.accept()
            with conn, conn.makefile("rwb") as f:
                for line in f:
                    f.write(line.upper())
                    f.flush()

        t = threading.Thread(target=serve)
        t.start()
        with ssock.create_connection(srv.getsockname(), timeout=JOIN) as c:
            with c.makefile("rw", newline="\n") as f:
                for word in ("alpha", "beta"):
                    f.write(word + "\n")
                    f.flush()
                    assert f.readline() == word.upper() + "\n"
            c.shutdown(ssock.SHUT_WR)
            assert c.recv(10) == b""
        t.join(JOIN)
        srv.close()
        c = ssock.socket()                                # the default stack
        assert c._astack is A
        c.close()
    finally:
        ssock.use_stack(None)
    with pytest.raises(RuntimeError):
        ssock.socket()


def test_connection_refused(threaded_stacks):
    A, B = threaded_stacks
    c = ssock.socket(stack=A)
    c.settimeout(JOIN)
    with pytest.raises(ConnectionRefusedError) as e:
        c.connect((B_ADDR, 9))
    assert e.value.errno == errno.ECONNREFUSED
    assert c.connect_ex((B_ADDR, 9)) == errno.ECONNREFUSED
    c.close()


def test_nonblocking_connect_refused_reports_through_so_error(threaded_stacks):
    A, B = threaded_stacks
    c = ssock.socket(stack=A)
    c.setblocking(False)
    assert c.connect_ex((B_ADDR, 9)) == errno.EINPROGRESS
    _wait(lambda: c.connection is None or c.connection.state is State.CLOSED)
    assert c.getsockopt(ssock.SOL_SOCKET, ssock.SO_ERROR) == errno.ECONNREFUSED
    assert c.getsockopt(ssock.SOL_SOCKET, ssock.SO_ERROR) == 0          # read and cleared
    c.close()


def test_nonblocking_mode(threaded_stacks):
    A, B = threaded_stacks
    srv = _server(B)
    srv.setblocking(False)
    with pytest.raises(BlockingIOError) as e:
        srv.accept()
    assert e.value.errno == errno.EAGAIN
    c = ssock.socket(stack=A)
    c.setblocking(False)
    with pytest.raises(BlockingIOError) as e:
        c.connect(srv.getsockname())
    assert e.value.errno == errno.EINPROGRESS
    _wait(lambda: c.connection.state is State.ESTABLISHED)
    assert c.getsockopt(ssock.SOL_SOCKET, ssock.SO_ERROR) == 0
    assert c.getpeername() == srv.getsockname()
    c.connect(srv.getsockname())                         # Linux: 0 once, after EINPROGRESS...
    with pytest.raises(OSError) as e:
        c.connect(srv.getsockname())
    assert e.value.errno == errno.EISCONN                # ...then "already connected"
    s = None

    def accepted():
        nonlocal s
        try:
            s, _ = srv.accept()
            return True
        except BlockingIOError:
            return False
    _wait(accepted)
    s.setblocking(False)
    with pytest.raises(BlockingIOError) as e:
        s.recv(10)
    assert e.value.errno == errno.EAGAIN
    sent = 0
    with pytest.raises(BlockingIOError):
        for _ in range(10_000):
            sent += c.send(b"x" * 65536)                # nobody reads: the buffers fill up
    assert sent >= c.getsockopt(ssock.SOL_SOCKET, ssock.SO_SNDBUF)
    got = 0
    s.settimeout(JOIN)
    while got < sent:
        got += len(s.recv(65536))
    assert got == sent
    for x in (c, s, srv):
        x.close()


def test_reset_by_peer_and_so_linger_zero_sends_rst(threaded_stacks):
    A, B = threaded_stacks
    c, s = _pair(A, B)
    c.sendall(b"hello")
    assert s.recv(5) == b"hello"
    rst_before = A.stack.stats["rst_out"]
    c.setsockopt(ssock.SOL_SOCKET, ssock.SO_LINGER, struct.pack("ii", 1, 0))
    assert c.getsockopt(ssock.SOL_SOCKET, ssock.SO_LINGER, 8) == struct.pack("ii", 1, 0)
    conn = c.connection
    c.close()                                            # abortive close: RST, no FIN
    with pytest.raises(ConnectionResetError) as e:
        s.recv(10)
    assert e.value.errno == errno.ECONNRESET
    assert A.stack.stats["rst_out"] >= rst_before + 1    # (a late ACK from B may earn another)
    assert [st for _, st in conn.state_history][-2:] == [State.ESTABLISHED, State.CLOSED]
    assert s.connection.state is State.CLOSED
    with pytest.raises(OSError) as e:
        s.send(b"x")
    assert e.value.errno in (errno.ECONNRESET, errno.EPIPE)
    s.close()


def test_plain_close_sends_fin_not_rst(threaded_stacks):
    A, B = threaded_stacks
    c, s = _pair(A, B)
    rst_before = A.stack.stats["rst_out"]
    c.close()
    assert s.recv(10) == b""                             # EOF, not a reset
    assert A.stack.stats["rst_out"] == rst_before
    s.close()


def test_timeouts(threaded_stacks, blackhole):
    A, B = threaded_stacks
    c, s = _pair(A, B)
    s.settimeout(0.1)
    t0 = time.monotonic()
    with pytest.raises(ssock.timeout) as e:
        s.recv(10)
    assert isinstance(e.value, TimeoutError) and e.value.errno is None and str(e.value) == "timed out"
    assert 0.09 <= time.monotonic() - t0 < 2
    c.settimeout(0.2)                                    # sendall to a reader that never reads
    with pytest.raises(ssock.timeout):
        c.sendall(b"y" * (8 << 20))
    srv = _server(B)
    srv.settimeout(0.05)
    with pytest.raises(ssock.timeout):
        srv.accept()
    # connect: the socket timeout (socket.timeout) and TCP's own give-up (ETIMEDOUT)
    x = ssock.socket(stack=blackhole)
    x.settimeout(0.05)
    with pytest.raises(ssock.timeout):
        x.connect((B_ADDR, 80))
    assert x.connect_ex((B_ADDR, 80)) == errno.EAGAIN
    x.settimeout(JOIN)
    with pytest.raises(TimeoutError) as e:
        x.connect((B_ADDR, 80))                          # 3 SYNs, RTO 0.05 s: ETIMEDOUT
    assert e.value.errno == errno.ETIMEDOUT
    for sock in (x, srv, c, s):
        sock.close()


def test_setsockopt_getsockopt_round_trips(threaded_stacks):
    A, B = threaded_stacks
    c = ssock.socket(stack=A)
    S, T = ssock.SOL_SOCKET, ssock.IPPROTO_TCP
    defaults = {(T, ssock.TCP_NODELAY): 0, (S, ssock.SO_KEEPALIVE): 0, (T, ssock.TCP_KEEPIDLE): 7200,
                (T, ssock.TCP_KEEPINTVL): 75, (T, ssock.TCP_KEEPCNT): 9, (S, ssock.SO_REUSEADDR): 0,
                (S, ssock.SO_TYPE): ssock.SOCK_STREAM, (S, ssock.SO_ERROR): 0, (S, ssock.SO_LINGER): 0}
    for (level, opt), v in defaults.items():
        assert c.getsockopt(level, opt) == v, (level, opt)
    settings = {(T, ssock.TCP_NODELAY): 1, (S, ssock.SO_KEEPALIVE): 1, (T, ssock.TCP_KEEPIDLE): 30,
                (T, ssock.TCP_KEEPINTVL): 5, (T, ssock.TCP_KEEPCNT): 3, (S, ssock.SO_RCVBUF): 65536,
                (S, ssock.SO_SNDBUF): 32768, (S, ssock.SO_REUSEADDR): 1}
    for (level, opt), v in settings.items():
        c.setsockopt(level, opt, v)
        assert c.getsockopt(level, opt) == v, (level, opt)
    assert c.getsockopt(S, ssock.SO_RCVBUF, 4) == struct.pack("i", 65536)
    c.setsockopt(S, ssock.SO_LINGER, struct.pack("ii", 1, 5))
    assert struct.unpack("ii", c.getsockopt(S, ssock.SO_LINGER, 8)) == (1, 5)
    with pytest.raises(OSError) as e:
        c.setsockopt(T, ssock.TCP_KEEPCNT, 0)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(OSError) as e:
        c.getsockopt(S, 0x7777)
    assert e.value.errno == errno.ENOPROTOOPT
    # the options reach the connection
    srv = _server(B)
    c.settimeout(JOIN)
    c.connect(srv.getsockname())
    conn = c.connection
    cfg = conn.config
    assert (cfg.nagle, cfg.keepalive, cfg.keepalive_idle, cfg.keepalive_interval, cfg.keepalive_count,
            cfg.rcv_buf, cfg.snd_buf) == (False, True, 30, 5, 3, 65536, 32768)
    assert conn.timers.keepalive is not None                 # armed on entering ESTABLISHED
    # ...and changes on a live connection too
    c.setsockopt(T, ssock.TCP_NODELAY, 0)
    c.setsockopt(S, ssock.SO_SNDBUF, 8192)
    assert conn.config.nagle is True and conn.sndbuf.capacity == 8192
    assert c.getsockopt(T, ssock.TCP_NODELAY) == 0
    s, _ = srv.accept()
    s.setsockopt(S, ssock.SO_KEEPALIVE, 1)                    # set after the handshake
    assert s.connection.config.keepalive and s.connection.timers.keepalive is not None
    assert s.getsockopt(T, ssock.TCP_MAXSEG) == s.connection.mss
    assert c.getsockopt(S, ssock.SO_ACCEPTCONN) == 0 and srv.getsockopt(S, ssock.SO_ACCEPTCONN) == 1
    c.setsockopt(S, ssock.SO_LINGER, struct.pack("ii", 0, 0))
    for x in (c, s, srv):
        x.close()


def test_tcp_congestion_names_and_switches_the_algorithm(threaded_stacks):
    A, B = threaded_stacks
    T = ssock.IPPROTO_TCP
    c = ssock.socket(stack=A)
    assert c.getsockopt(T, ssock.TCP_CONGESTION, 16) == b"cubic".ljust(16, b"\0")   # the default
    c.setsockopt(T, ssock.TCP_CONGESTION, b"newreno")
    assert c.getsockopt(T, ssock.TCP_CONGESTION, 16).rstrip(b"\0") == b"reno"        # its name
    with pytest.raises(OSError) as e:
        c.setsockopt(T, ssock.TCP_CONGESTION, b"bbr")                                 # not here
    assert e.value.errno == errno.ENOENT
    assert c.getsockopt(T, ssock.TCP_CONGESTION, 16).rstrip(b"\0") == b"reno"        # unchanged
    srv = _server(B)
    c.settimeout(JOIN)
    c.connect(srv.getsockname())
    s, _ = srv.accept()
    conn = c.connection
    assert conn.cc.name == "reno"
    c.sendall(b"x" * 200_000)
    got = 0
    while got < 200_000:
        got += len(s.recv(65536))
    before = (conn.cc.cwnd, conn.cc.ssthresh)
    c.setsockopt(T, ssock.TCP_CONGESTION, b"cubic")        # live: CUBIC takes the window over
    assert conn.cc.name == "cubic" and (conn.cc.cwnd, conn.cc.ssthresh) == before
    assert c.getsockopt(T, ssock.TCP_CONGESTION, 16).rstrip(b"\0") == b"cubic"
    c.sendall(b"y" * 100_000)
    got = 0
    while got < 100_000:
        got += len(s.recv(65536))
    for x in (c, s, srv):
        x.close()


def test_listener_inherits_options_and_so_rcvbuf_sets_the_window(threaded_stacks):
    A, B = threaded_stacks
    srv = ssock.socket(stack=B)
    srv.settimeout(JOIN)
    srv.setsockopt(ssock.SOL_SOCKET, ssock.SO_RCVBUF, 4096)
    srv.setsockopt(ssock.IPPROTO_TCP, ssock.TCP_NODELAY, 1)
    srv.bind((B_ADDR, 0))
    srv.listen()
    c = ssock.create_connection(srv.getsockname(), JOIN, stack=A)
    s, _ = srv.accept()
    assert s.getsockopt(ssock.SOL_SOCKET, ssock.SO_RCVBUF) == 4096
    assert s.getsockopt(ssock.IPPROTO_TCP, ssock.TCP_NODELAY) == 1
    c.settimeout(0.3)
    with pytest.raises(ssock.timeout):
        c.sendall(b"z" * (1 << 20))
    _wait(lambda: s.connection.rcv_wnd < s.connection.mss)
    assert s.connection.readable <= 4096
    for x in (c, s, srv):
        x.close()


def test_errors_of_the_socket_module(threaded_stacks):
    A, B = threaded_stacks
    c = ssock.socket(stack=A)
    for call in (lambda: c.recv(1), c.getpeername, lambda: c.shutdown(ssock.SHUT_WR)):
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno == errno.ENOTCONN
    with pytest.raises(BrokenPipeError) as e:
        c.send(b"x")                                      # Linux: EPIPE on an unconnected socket
    assert e.value.errno == errno.EPIPE
    assert c.getsockname() == ("0.0.0.0", 0) and c.fileno() == -1
    srv = _server(B, 8080)
    other = ssock.socket(stack=B)
    with pytest.raises(OSError) as e:
        other.bind((B_ADDR, 8080))
    assert e.value.errno == errno.EADDRINUSE
    with pytest.raises(OSError) as e:
        other.bind(("203.0.113.9", 1))
    assert e.value.errno == errno.EADDRNOTAVAIL
    c.settimeout(JOIN)
    c.connect((B_ADDR, 8080))
    with pytest.raises(OSError) as e:
        c.connect((B_ADDR, 8080))
    assert e.value.errno == errno.EISCONN
    s, _ = srv.accept()
    c.shutdown(ssock.SHUT_WR)
    with pytest.raises(BrokenPipeError) as e:
        c.send(b"late")
    assert e.value.errno == errno.EPIPE
    assert s.recv(10) == b""
    s.sendall(b"still open")                             # half-close: the other way works
    assert c.recv(100) == b"still open"
    c.shutdown(ssock.SHUT_RD)
    assert c.recv(100) == b""
    c.close()
    with pytest.raises(OSError) as e:
        c.recv(1)
    assert e.value.errno == errno.EBADF
    c.close()                                             # closing twice is fine
    for x in (s, srv, other):
        x.close()
    # the server end is in LAST-ACK until the client's ACK of its FIN comes back; while it lasts
    # the port is in use (Linux: EADDRINUSE without SO_REUSEADDR), then it is free again
    _wait(lambda: not any(k[1] == 8080 for k in list(B.stack.conns)))
    again = _server(B, 8080)
    again.close()


def test_msg_peek_and_dontwait(threaded_stacks):
    A, B = threaded_stacks
    c, s = _pair(A, B)
    with pytest.raises(BlockingIOError):
        s.recv(10, ssock.MSG_DONTWAIT)
    c.sendall(b"peekaboo")
    assert s.recv(4, ssock.MSG_PEEK) == b"peek"
    assert s.recv(100) == b"peekaboo"
    for x in (c, s):
        x.close()


def test_calling_from_the_loop_thread_is_refused(threaded_stacks):
    A, _ = threaded_stacks
    c = ssock.socket(stack=A)
    c.settimeout(1)
    fut = __import__("asyncio").run_coroutine_threadsafe(_connect_on_loop(c), A.loop)
    with pytest.raises(RuntimeError):
        fut.result(JOIN)
    c.close()


async def _connect_on_loop(sock):
    sock.connect((B_ADDR, 1))


def test_so_linger_with_time_waits_for_the_fin_to_be_acked(threaded_stacks):
    A, B = threaded_stacks
    c, s = _pair(A, B)
    c.sendall(b"bye")
    c.setsockopt(ssock.SOL_SOCKET, ssock.SO_LINGER, struct.pack("ii", 1, 2))
    conn = c.connection
    t0 = time.monotonic()
    c.close()
    assert time.monotonic() - t0 < 1.5
    assert conn.state in (State.FIN_WAIT_2, State.TIME_WAIT)   # our FIN was acknowledged
    assert s.recv(10) == b"bye" and s.recv(10) == b""
    s.close()


def test_a_closed_stack_fails_calls_instead_of_hanging(threaded_stacks):
    A, B = threaded_stacks
    c, s = _pair(A, B)
    result = []

    def blocked():
        try:
            s.settimeout(None)
            result.append(s.recv(10))
        except OSError as e:
            result.append(e)

    t = threading.Thread(target=blocked)
    t.start()
    time.sleep(0.05)                                     # let it block in recv
    B.close()
    t.join(JOIN)
    assert isinstance(result[0], OSError) and result[0].errno == errno.ENETDOWN
    with pytest.raises(OSError) as e:
        s.recv(1)
    assert e.value.errno == errno.ENETDOWN
    c.close()
    s.close()


def test_ipv6():
    la, lb = DgramLink.pair()
    A = AsyncStack.start_thread(Stack(["2001:db8::1/64"], secret=b"a6"), la)
    B = AsyncStack.start_thread(Stack(["2001:db8::2/64"], secret=b"b6"), lb)
    try:
        srv = ssock.socket(ssock.AF_INET6, stack=B)
        srv.settimeout(JOIN)
        srv.bind(("::", 0))
        srv.listen()
        port = srv.getsockname()[1]
        assert srv.getsockname() == ("::", port, 0, 0)
        c = ssock.socket(ssock.AF_INET6, stack=A)
        c.settimeout(JOIN)
        c.connect(("2001:db8::2", port))
        s, addr = srv.accept()
        assert addr == c.getsockname() and c.getpeername() == ("2001:db8::2", port, 0, 0)
        c.sendall(b"six")
        assert s.recv(10) == b"six"
        for x in (c, s, srv):
            x.close()
    finally:
        A.close()
        B.close()
        la.close()
        lb.close()


def test_ip_tos_round_trips_and_reaches_the_connection(threaded_stacks):
    """IP_TOS sets the Diffserv octet of the connection's segments (RFC 9293 MUST-48)."""
    import socket as std
    A, B = threaded_stacks
    s = ssock.socket(stack=A)
    try:
        s.setsockopt(std.IPPROTO_IP, std.IP_TOS, 0x28)
        assert s.getsockopt(std.IPPROTO_IP, std.IP_TOS) == 0x28
    finally:
        s.close()
