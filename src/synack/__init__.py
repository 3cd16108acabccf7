"""synack: a user-space TCP/IP stack in pure Python.

Layers (imports point only downward):
  wire/  bytes <-> immutable values (IPv4, IPv6, TCP, ICMP, checksums, sequence arithmetic)
  tcp/   one TCP connection (the TCB), sans-IO: every state-changing call takes ``now``
  stack/ a host: demux by 4-tuple, listeners, SYN cookies, RSTs for strays
  link/  links and wrappers (pcap, faults, tracer) around any link
  sim/   virtual clock and simulated network
"""

__version__ = "0.1.0"
