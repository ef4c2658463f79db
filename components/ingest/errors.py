"""`DataError`: a data problem the user can fix, and how to find it again.

Raised by every reader of `components.ingest` (`sources`, `pickles`, `trees`,
`images`) and re-exported by `sources`, whose names the rest of the project
uses (`sources.DataError`, `sources.find_data_error`). Beam re-creates and
wraps exceptions raised inside workers; `find_data_error` digs the message out
of whatever arrives at the pipeline runner.
"""

from __future__ import annotations

import re

_OPEN, _CLOSE = '<<DataError: ', ' :DataError>>'
_MARKED = re.compile(re.escape(_OPEN) + '(.*?)' + re.escape(_CLOSE), re.S)


class DataError(ValueError):
  """A data problem the user can fix; `.message` says what and where.

  str(e) frames the message between markers so that `find_data_error` can
  recover it from any exception text Beam wraps it in.
  """

  def __init__(self, message: str):
    found = _MARKED.search(message)  # Beam re-creates it with a step suffix
    self.message = found.group(1) if found else message
    super().__init__(f'{_OPEN}{self.message}{_CLOSE}')


def find_data_error(exc: BaseException) -> str | None:
  """The DataError message inside `exc` (its causes, contexts or text), or None."""
  todo, seen = [exc], set()
  while todo:
    current = todo.pop(0)
    if current is None or id(current) in seen:
      continue
    seen.add(id(current))
    if isinstance(current, DataError):
      return current.message
    try:
      found = _MARKED.search(str(current))
    except Exception:  # pylint: disable=broad-except
      found = None
    if found:
      return found.group(1)
    todo += [current.__cause__, current.__context__]
  return None
