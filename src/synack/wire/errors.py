"""The one error type every parser in ``synack.wire`` raises."""


class WireError(ValueError):
    """A packet (or part of one) could not be parsed; ``reason`` says why.

    Parsers raise this and nothing else, whatever bytes they are given.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
