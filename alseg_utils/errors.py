"""Project error types.

Every error a user can cause (a bad params file, a missing data folder, a mask of the wrong size)
is raised as an :class:`AlsegError` subclass whose message is one line saying what is wrong and how
to fix it. The command line prints that line and exits with status 2; it never shows a traceback
for these.
"""

from __future__ import annotations


class AlsegError(Exception):
    """Base class of every user-facing error of alseg."""


class ConfigError(AlsegError, ValueError):
    """A params file or a parameter value is invalid."""


class DataError(AlsegError, ValueError):
    """A data folder, image or mask is missing, malformed or inconsistent."""


class RunStateError(AlsegError, RuntimeError):
    """A run directory is inconsistent with the requested run (e.g. it belongs to another config)."""
