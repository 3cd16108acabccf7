"""Helpers for testing TCP behaviour: packet dialogues against one connection."""

from synack.testing.dialogue import Dialogue, DialogueMismatch, parse_flags, sack_option

__all__ = ["Dialogue", "DialogueMismatch", "parse_flags", "sack_option"]
