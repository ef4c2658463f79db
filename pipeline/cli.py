"""The `cifar10-tfx` command line.

Called as the console script `cifar10-tfx` (pyproject.toml). Parses arguments
and builds the configuration without importing TensorFlow or TFX, so `--help`
and configuration errors answer at once; the heavy imports happen only when a
command needs them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import warnings

from pipeline import config as config_lib


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog='cifar10-tfx',
      description='CIFAR-10 TFX pipeline: ingest, validate, transform, train '
      'AlexNet and VGG16, evaluate both with TFMA, push the better one.')
  commands = parser.add_subparsers(dest='command', metavar='COMMAND')
  commands.required = True
  run = commands.add_parser(
      'run', help='run the whole pipeline locally (LocalDagRunner)',
      description='Run the whole DAG locally with SQLite ML Metadata and the '
      'Beam DirectRunner; unchanged components are served from cache.')
  run.add_argument('--preset', default='full', choices=sorted(config_lib.PRESETS),
                   help='full: all of CIFAR-10, full recipes (default); quick: '
                   'a few hundred images, one short epoch per model')
  run.add_argument('--data', metavar='PATH_OR_URL',
                   help='cifar-10-python.tar.gz or cifar-10-batches-py/, a tree '
                   'train/<class>/*.png|jpg + test/<class>/... (folder or '
                   '.tar.gz), or a URL; default: the Keras cache, then download')
  run.add_argument('--root', metavar='DIR',
                   help='pipeline artifacts and ML Metadata (default ./pipeline_output)')
  run.add_argument('--serving-dir', metavar='DIR',
                   help='where the chosen model is pushed (default ./serving_model)')
  run.add_argument('--set', dest='overrides', action='append', default=[],
                   metavar='KEY=VALUE',
                   help='override a config field, e.g. alexnet.epochs=3 '
                   '(repeatable)')
  return parser


def build_config(args: argparse.Namespace) -> config_lib.PipelineConfig:
  config = config_lib.preset(args.preset)
  if args.data is not None:
    config.data.source = args.data
  if args.root:
    config.root = args.root
  if args.serving_dir:
    config.serving.directory = args.serving_dir
  for assignment in args.overrides:
    config_lib.apply_override(config, assignment)
  return config_lib.validate(config)


def _quiet_imports() -> None:
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  warnings.filterwarnings('ignore', category=FutureWarning)
  warnings.filterwarnings('ignore', category=DeprecationWarning)
  warnings.filterwarnings('ignore', category=UserWarning, module='google')


def _preflight(config: config_lib.PipelineConfig) -> None:
  """Checks that each trainer module imports and can start (e.g. has weights)."""
  for name, trainer in config.models.items():
    try:
      module = importlib.import_module(trainer.module)
    except ImportError as error:
      raise config_lib.ConfigError(
          f'{name}.module: cannot import {trainer.module!r} ({error}).') from None
    if not hasattr(module, 'run_fn'):
      raise config_lib.ConfigError(
          f'{name}.module: {trainer.module!r} has no run_fn.')
    preflight = getattr(module, 'preflight', None)
    if preflight:
      print(f'{name}: weights from {preflight(trainer)}', flush=True)


def run_command(args: argparse.Namespace) -> int:
  config = build_config(args)
  _quiet_imports()
  from components.ingest import sources
  source = sources.resolve_source(config.data.source, config.data.cache_dir)
  print(f'Data: {source.kind} at {source.path}', flush=True)
  _preflight(config)
  from pipeline import local
  start = time.time()
  record = local.run(config, source)
  print(local.summary(record))
  print(f'Total wall time {time.time() - start:.0f} s')
  return 0


def main(argv: list[str] | None = None) -> int:
  args = _parser().parse_args(argv)
  try:
    return run_command(args)
  except config_lib.ConfigError as error:
    print(f'cifar10-tfx: configuration error: {error}', file=sys.stderr)
    return 2
  except Exception as error:  # pylint: disable=broad-except
    known = _known_error(error)
    if known is None:
      raise
    print(f'cifar10-tfx: {known}', file=sys.stderr)
    return 1


def _known_error(error: Exception) -> str | None:
  """The message of an error the user can act on, else None."""
  from components.ingest.sources import find_data_error
  data_error = find_data_error(error)
  if data_error:
    return f'bad data: {data_error}'
  if type(error).__name__ in ('WeightsUnavailable', 'RunFailed'):
    return str(error)
  return None


if __name__ == '__main__':
  sys.exit(main())
