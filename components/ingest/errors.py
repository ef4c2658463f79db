"""`DataError`: a data problem the user can fix, naming the file and the fix.

Raised by every reader of `components.ingest` (`sources`, `pickles`, `trees`,
`images`) and re-exported by `sources`, whose names the rest of the project
uses. It is a `components.errors.UserError`, so it survives Beam's
re-raising with its class and message, and the command line prints it as
one line.
"""

from __future__ import annotations

from components.errors import UserError, find


class DataError(UserError, ValueError):
  """A data problem the user can fix; `.message` says what and where."""


def find_data_error(exc: BaseException) -> str | None:
  """The message of the DataError inside `exc` (its causes, contexts), or None."""
  found = find(exc)
  return found.message if isinstance(found, DataError) else None
