"""Errors a user can act on.

A :class:`UserError` is a mistake in the command line, the config or the data. The CLI prints
its message as one line and exits with code 2; anything else is a bug and keeps its traceback.
"""

__all__ = ["UserError"]


class UserError(Exception):
    """A mistake the user can fix; the message says what to change."""
