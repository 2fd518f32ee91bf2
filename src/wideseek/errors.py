"""The one root of every error a user can cause, and the exit codes the CLI gives them.

Library users catch `WideseekError` (or a subclass: `ConfigError`, `EngineError`,
`ModelDirError`, `WorldError`, `CorpusError`, `DataError`, ...); the CLI prints any of them as
one `error: ...` line and exits with `exit_code`. Bugs are not `WideseekError`s: they keep
their traceback.

Subclasses that stood for a builtin kind before the root existed keep that base too (a
`ConfigError` is still a `ValueError`), so code that caught the builtin keeps working.
"""

from __future__ import annotations


class WideseekError(Exception):
    """An error the user can fix: bad file, bad config, unreachable server, broken model dir.
    The message says what and where, on one line."""

    exit_code = 1


class UsageError(WideseekError):
    """A request that cannot work as asked (flags that conflict, no tasks left after filters,
    a run directory that holds another run)."""


class ConfigError(WideseekError, ValueError):
    """A config file or override that cannot be used; the message says what and where."""


class DataError(WideseekError, ValueError):
    """An input file (tasks, answers, QA records, a run directory) that cannot be read as the
    format it should have; the message names the file and, where it can, the line."""
