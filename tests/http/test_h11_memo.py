"""``synack.http.server._MemoH11``: h11's response-header clean-up, remembered per case. The
bytes it sends are h11's own, for the first response of a case and for every later one (when
the remembered headers are reused), over requests of both HTTP versions, with and without
``Connection: close``, GET and HEAD, and responses with a length, without one (chunked or
close-delimited), and without a body."""

import itertools

import h11
import pytest

from synack.http.server import _H11, _MemoH11, _response_head

REQUESTS = {
    "1.1": b"GET /f HTTP/1.1\r\nHost: x\r\n\r\n",
    "1.1 close": b"GET /f HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "1.1 HEAD close": b"HEAD /f HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\n",
    "1.0": b"GET /f HTTP/1.0\r\n\r\n",
    "1.0 keep-alive": b"GET /f HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
}
RESPONSES = {
    "200 length": (200, [("date", "Sat, 28 Nov 2026 00:00:00 GMT"), ("content-length", "5")], [b"hello"]),
    "200 chunked": (200, [("date", "Sat, 28 Nov 2026 00:00:00 GMT"), ("content-type", "text/plain")],
                    [b"he", b"llo"]),
    "204": (204, [("date", "Sat, 28 Nov 2026 00:00:00 GMT")], []),
    "304": (304, [("etag", '"1"')], []),
    "404 close": (404, [("content-length", "3"), ("connection", "close")], [b"no\n"]),
    "200 keep-alive": (200, [("content-length", "2"), ("connection", "keep-alive")], [b"ok"]),
}


def _serve(cls, request: bytes, status: int, headers: list, chunks: list) -> bytes:
    h = cls(h11.SERVER)
    h.receive_data(request)
    ev = h.next_event()
    assert isinstance(ev, h11.Request)
    while h.next_event() is not h11.NEED_DATA and h.their_state is not h11.DONE:
        pass
    out = h.send(_response_head(status, headers))
    if ev.method != b"HEAD":
        for c in chunks:
            out += h.send(h11.Data(data=c))
    out += h.send(h11.EndOfMessage())
    return out + f"|{h.our_state}|{h.their_state}".encode()


def test_the_memo_is_in_use():
    assert _H11 is _MemoH11                 # with the h11 this project installs


@pytest.mark.parametrize("req,resp", list(itertools.product(REQUESTS, RESPONSES)))
def test_same_bytes_as_h11_first_and_later_times(req, resp):
    status, headers, chunks = RESPONSES[resp]
    want = _serve(h11.Connection, REQUESTS[req], status, headers, chunks)
    for _ in range(3):                      # the first call fills the memo, the others use it
        assert _serve(_MemoH11, REQUESTS[req], status, headers, chunks) == want


HEADS = [
    b"GET /f HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /f HTTP/1.1\nHost: x\nUser-Agent: a\n\n",                       # bare LF line ends
    b"GET /f HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n  b\r\n\r\n",           # obs-fold
    b"HEAD /f?q=1 HTTP/1.0\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
    b"GET /f HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",                      # two Host fields: 400
    b"GET /f HTTP/1.1\r\n\r\n",                                              # no Host: 400
    b"GET /f HTTP/1.1\r\nBad Header: x\r\n\r\n",                            # space in a field name
    b"GET  /f HTTP/1.1\r\nHost: x\r\n\r\n",                                 # two spaces
    b"\r\n",                                                                 # no request line
    b"\x16\x03\x01\x02\x00",                                                 # TLS, obviously invalid
    b"GET /f HTTP/1.1\r\nHost: x\r\n",                                       # incomplete
]


def _events(cls, data: bytes) -> list:
    h = cls(h11.SERVER)
    h.receive_data(data)
    out = []
    for _ in range(4):
        try:
            ev = h.next_event()
        except h11.RemoteProtocolError as e:
            out.append(("error", str(e), e.error_status_hint))
            break
        out.append(ev)
        if ev is h11.NEED_DATA or ev is h11.PAUSED or type(ev) is h11.EndOfMessage:
            break
    return out + [h.our_state, h.their_state, h.their_http_version]


@pytest.mark.parametrize("head", HEADS)
def test_request_heads_parse_as_h11_parses_them_first_and_later_times(head):
    from synack.http.server import _IDLE_READER, _memo_read_from_idle_client
    assert _IDLE_READER is not None
    h = _MemoH11(h11.SERVER)
    assert h._reader is _memo_read_from_idle_client         # the memo is in use
    want = _events(h11.Connection, head)
    for _ in range(3):                      # the first call fills the memo, the others use it
        assert _events(_MemoH11, head) == want


def test_the_next_request_on_a_kept_alive_connection_is_parsed_by_the_memo_too():
    for cls in (h11.Connection, _MemoH11):
        h = cls(h11.SERVER)
        h.receive_data(REQUESTS["1.1"] * 2)
        assert type(h.next_event()) is h11.Request and type(h.next_event()) is h11.EndOfMessage
        h.send(_response_head(200, [("content-length", "0")]))
        h.send(h11.EndOfMessage())
        h.start_next_cycle()
        if cls is _MemoH11:
            from synack.http.server import _memo_read_from_idle_client
            assert h._reader is _memo_read_from_idle_client
        ev = h.next_event()
        assert type(ev) is h11.Request and ev.target == b"/f" and ev.headers == [(b"host", b"x")]
