"""Errors a user can cause and fix: the CLI prints their message as one sentence, no traceback."""


class UserError(Exception):
    """Bad configuration, an unreachable service, a bad argument: what was wrong, what to do."""
