"""The `cifar10-tfx` command line.

Called as the console script `cifar10-tfx` (pyproject.toml). Each subcommand
lives in its own module under `pipeline/commands/`; this file builds the
parser from them and turns the errors a user can cause into one message.
TensorFlow and TFX are imported only by the command that needs them, so
`--help` and configuration errors answer at once.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from pipeline import config as config_lib
from pipeline.commands import COMMANDS


def parser() -> argparse.ArgumentParser:
  root = argparse.ArgumentParser(
      prog='cifar10-tfx',
      description='CIFAR-10 TFX pipeline: ingest, validate, transform, train '
      'AlexNet and VGG16, evaluate both with TFMA, push the better one.')
  commands = root.add_subparsers(dest='command', metavar='COMMAND')
  commands.required = True
  for name in COMMANDS:
    importlib.import_module(name).register(commands)
  return root


def known_error(error: BaseException) -> str | None:
  """The message of an error the user can act on, else None."""
  from components.ingest.sources import find_data_error
  data_error = find_data_error(error)
  if data_error:
    return f'bad data: {data_error}'
  if type(error).__name__ in ('WeightsUnavailable', 'RunFailed', 'UserError'):
    return str(error)
  return None


def main(argv: list[str] | None = None) -> int:
  args = parser().parse_args(argv)
  try:
    return args.func(args)
  except config_lib.ConfigError as error:
    print(f'cifar10-tfx: configuration error: {error}', file=sys.stderr)
    return 2
  except Exception as error:  # pylint: disable=broad-except
    message = known_error(error)
    if message is None:
      raise
    print(f'cifar10-tfx: {message}', file=sys.stderr)
    return 1


if __name__ == '__main__':
  sys.exit(main())
