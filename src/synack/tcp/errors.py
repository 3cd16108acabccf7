"""Errors raised by user calls made in a state that forbids them (RFC 9293 §3.10.1-3.10.6).

Each is an ``OSError`` subclass with the matching ``errno``, so the socket API can let them
through unchanged and code written for ``socket`` catches them as it always did. Peer
misbehaviour never raises: it is dropped, reset or challenge-ACKed and logged.
"""

from __future__ import annotations

import errno as _errno


class LocalError(OSError):
    """Base: a user call that the connection's state forbids."""
    default_errno = _errno.EINVAL

    def __init__(self, message: str, err: int | None = None) -> None:
        super().__init__(err if err is not None else self.default_errno, message)


class ConnectionRefused(LocalError, ConnectionRefusedError):
    default_errno = _errno.ECONNREFUSED


class ConnectionReset(LocalError, ConnectionResetError):
    default_errno = _errno.ECONNRESET


class ConnectionTimedOut(LocalError, TimeoutError):
    default_errno = _errno.ETIMEDOUT


class NotConnected(LocalError):
    default_errno = _errno.ENOTCONN


class BrokenPipe(LocalError, BrokenPipeError):
    """"connection closing": SEND after CLOSE (RFC 9293 §3.10.2)."""
    default_errno = _errno.EPIPE


class ConnectionExists(LocalError):
    """"connection already exists": OPEN on a connection that has a TCB (§3.10.1)."""
    default_errno = _errno.EISCONN


class AlreadyConnecting(LocalError):
    default_errno = _errno.EALREADY


class InvalidState(LocalError):
    default_errno = _errno.EINVAL


class HostUnreachable(LocalError):
    """An ICMP hard error ended a connection attempt (RFC 1122 §4.2.3.9)."""
    default_errno = _errno.EHOSTUNREACH
