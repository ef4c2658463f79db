"""`--set key=value`: one override of the typed configuration, by its path.

Called by the command line (`pipeline.commands.build_config`), the benchmarks
and the tests, after a preset (`pipeline.config.preset`) and before
`pipeline.config.validate`. The value is parsed as the field's declared type;
an unknown key or a value of the wrong type raises `ConfigError` naming it.
"""

from __future__ import annotations

import dataclasses
import typing

from pipeline.config import ConfigError, PipelineConfig


def _coerce(text: str, kind: type, key: str):
  """Parses `text` into the field's declared type."""
  kind = typing.get_origin(kind) or kind
  try:
    if kind is bool:
      lowered = text.strip().lower()
      if lowered not in ('true', 'false', '1', '0', 'yes', 'no'):
        raise ValueError(text)
      return lowered in ('true', '1', 'yes')
    if kind is list:
      return [part for part in text.split(',') if part]
    return kind(text)
  except ValueError:
    raise ConfigError(
        f'--set {key}={text}: expected a value of type {kind.__name__}.'
    ) from None


def apply(config: PipelineConfig, assignment: str) -> None:
  """Applies one `--set key=value`, e.g. `alexnet.epochs=3`."""
  if '=' not in assignment:
    raise ConfigError(f'--set {assignment}: write it as key=value, '
                      'for example --set alexnet.epochs=3.')
  key, text = assignment.split('=', 1)
  parts = key.strip().split('.')
  if parts[0] == 'models':
    parts = parts[1:]
  target = config
  if parts and parts[0] in config.models:
    target, parts = config.models[parts[0]], parts[1:]
  for part in parts[:-1]:
    target = getattr(target, part, None) if dataclasses.is_dataclass(
        target) and part in {f.name for f in dataclasses.fields(target)} else None
    if target is None:
      break
  leaf = parts[-1] if parts else ''
  if (target is None or not dataclasses.is_dataclass(target) or
      leaf not in {f.name for f in dataclasses.fields(target)} or
      dataclasses.is_dataclass(getattr(target, leaf))):
    raise ConfigError(f'--set {key}: unknown setting. Known keys: '
                      f'{", ".join(known_keys(config))}.')
  kind = typing.get_type_hints(type(target))[leaf]
  setattr(target, leaf, _coerce(text, kind, key))


def known_keys(config: PipelineConfig) -> list[str]:
  keys = []
  def walk(obj, prefix):
    for f in dataclasses.fields(obj):
      value = getattr(obj, f.name)
      if dataclasses.is_dataclass(value):
        walk(value, f'{prefix}{f.name}.')
      elif f.name != 'models':
        keys.append(prefix + f.name)
  walk(config, '')
  for name, trainer in config.models.items():
    walk(trainer, f'{name}.')
  return keys
