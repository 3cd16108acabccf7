"""Pictures of real connections, read only from captures and event logs (STYLE.md §8).

``model.load(path)`` gives connections with their segments and both endpoints' states
(``tracker`` infers them when no log says); ``seqdiag`` draws the sequence diagram as SVG,
Mermaid or terminal text; ``plots`` draws time-sequence, throughput, cwnd, RTT and in-flight
graphs with matplotlib; ``cli`` holds the ``draw`` and ``plot`` subcommands.
"""
