"""Helpers for testing TCP behaviour: packet dialogues against one connection."""

from synack.testing.dialogue import Dialogue, DialogueMismatch, parse_flags

__all__ = ["Dialogue", "DialogueMismatch", "parse_flags"]
