"""The `cifar10-tfx` command line.

Called as the console script `cifar10-tfx` (pyproject.toml). Each subcommand
lives in its own module under `pipeline/commands/`; this file builds the
parser from them and ends every failure a user can cause (any
`components.errors.UserError`, found in the exception's chain) with one
`cifar10-tfx: ...` line and a non-zero exit; a traceback is printed only for
a genuine bug, or with `--verbose`. TensorFlow and TFX are imported only by
the command that needs them, so `--help` and configuration errors answer at
once.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from components import errors
from components.ingest.errors import DataError
from pipeline import config as config_lib
from pipeline.commands import COMMANDS


def parser() -> argparse.ArgumentParser:
  root = argparse.ArgumentParser(
      prog='cifar10-tfx',
      description='CIFAR-10 TFX pipeline: ingest, validate, transform, train '
      'AlexNet and VGG16, evaluate both with TFMA, push the better one.')
  root.add_argument('--verbose', action='store_true',
                    help='print the traceback of a failure, not only its message')
  commands = root.add_subparsers(dest='command', metavar='COMMAND')
  commands.required = True
  for name in COMMANDS:
    importlib.import_module(name).register(commands)
  return root


def main(argv: list[str] | None = None) -> int:
  args = parser().parse_args(argv)
  try:
    return args.func(args)
  except Exception as error:  # pylint: disable=broad-except
    found = errors.find(error)
    if found is None:
      raise
    if args.verbose:
      traceback.print_exc()
    if isinstance(found, config_lib.ConfigError):
      print(f'cifar10-tfx: configuration error: {found}', file=sys.stderr)
      return 2
    prefix = 'bad data: ' if isinstance(found, DataError) else ''
    print(f'cifar10-tfx: {prefix}{found}', file=sys.stderr)
    return 1


if __name__ == '__main__':
  sys.exit(main())
