"""A TCB has no per-instance __dict__: every attribute is declared in TcpConnection.__slots__.

A mixin without ``__slots__ = ()``, or an attribute set outside the list, would bring the dict
back (about 2.5 KB a connection once it outgrows its first size) or fail with AttributeError.
"""

from synack.stack.host import Stack
from synack.tcp.connection import TcpConnection


def test_connection_has_no_instance_dict():
    s = Stack(["192.0.2.1/24"], secret=b"x" * 16)
    c = s.connect(("192.0.2.2", 80), 0.0)
    assert not hasattr(c, "__dict__")
    for cls in TcpConnection.__mro__[:-1]:
        assert "__slots__" in vars(cls), f"{cls.__name__} has no __slots__"
