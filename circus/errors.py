"""The exceptions circus raises. Every message names the bad value and what would be valid."""

from __future__ import annotations


class CircusError(Exception):
    """Base class of every error circus raises on purpose."""


class OptionError(CircusError, ValueError):
    """An option has a bad name, type or value."""


class UnknownShowError(CircusError, KeyError):
    """No show of that name."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class ShowExistsError(CircusError, ValueError):
    """A show of that name is already there."""


class NotRunningError(CircusError, RuntimeError):
    """The operation needs a running trainer."""
