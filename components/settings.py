"""One way to hand a component its settings: a dataclass as one JSON string.

Called by the component builders (`to_json`, when the pipeline is assembled)
and by the executors and `run_fn`s (`from_json`, when they run). Each
component owns the dataclass of its settings; `pipeline/config.py` composes
them into the user's configuration.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any, TypeVar

T = TypeVar('T')


def to_json(settings: Any) -> str:
  """The dataclass `settings` as sorted JSON (stable, so the cache sees only
  real changes)."""
  return json.dumps(dataclasses.asdict(settings), sort_keys=True)


def from_json(cls: type[T], text: str) -> T:
  """`cls` (nested dataclasses too) from `to_json`'s text; raises ValueError
  on unknown fields."""
  values = json.loads(text) if text else {}
  if not isinstance(values, dict):
    raise ValueError(f'{cls.__name__} settings must be a JSON object, got '
                     f'{text[:80]!r}.')
  known = {f.name: f for f in dataclasses.fields(cls)}
  unknown = sorted(set(values) - set(known))
  if unknown:
    raise ValueError(f'{cls.__name__} has no field(s) {unknown}: the pipeline '
                     'was compiled by other code than the one running it.')
  types = typing.get_type_hints(cls)
  for name, value in values.items():
    if dataclasses.is_dataclass(types[name]) and isinstance(value, dict):
      values[name] = from_json(types[name], json.dumps(value))
  return cls(**values)
