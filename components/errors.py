"""`UserError`: the one base of every failure a user can cause and fix.

A leaf module. Raised by ingestion (`DataError`), the configuration
(`ConfigError`), the data gate, the trainers (missing weights, a diverging
loss), the selector and the stores; caught by `pipeline.cli.main`, which
prints `cifar10-tfx: <message>` and exits non-zero, and found again by
`find` after TFX or Beam have wrapped it.

Carrying it across Beam: Beam re-raises an exception from a transform as
`type(e)(e.args[0] + " [while running 'STEP']")`; `UserError.__init__` takes
the message alone and strips that annotation, so the re-created error is of
the same class with the same message. Subclasses therefore keep the
one-argument constructor.
"""

from __future__ import annotations

import re

_BEAM_STEP = re.compile(r"(?: \[while running '[^']*'\])+$")


class UserError(Exception):
  """A failure the user can act on; str() is the whole message, one line or a
  short list, ending with what to do."""

  def __init__(self, message: str):
    super().__init__(_BEAM_STEP.sub('', str(message)))

  @property
  def message(self) -> str:
    return self.args[0]


def find(error: BaseException | None) -> UserError | None:
  """The first UserError in `error` and its causes and contexts, or None."""
  todo, seen = [error], set()
  while todo:
    current = todo.pop(0)
    if current is None or id(current) in seen:
      continue
    seen.add(id(current))
    if isinstance(current, UserError):
      return current
    todo += [current.__cause__, current.__context__]
  return None
