"""`cifar10-tfx run`: the whole DAG, locally.

Called by `pipeline/cli.py`. Resolves the data and checks each trainer before
TFX starts, so a bad path or missing weights cost seconds, not hours.
"""

from __future__ import annotations

import argparse
import importlib
import time

from pipeline import config as config_lib
from pipeline.commands import add_config_arguments, build_config, prepare_imports


def register(commands) -> None:
  parser = commands.add_parser(
      'run', help='run the whole pipeline locally (LocalDagRunner)',
      description='Run the whole DAG locally with SQLite ML Metadata and the '
      'Beam DirectRunner; unchanged components are served from cache.')
  add_config_arguments(parser)
  parser.add_argument('--data', metavar='PATH_OR_URL',
                      help='cifar-10-python.tar.gz or cifar-10-batches-py/, a '
                      'tree train/<class>/*.png|jpg + test/<class>/... (folder '
                      'or .tar.gz), or a URL; default: the Keras cache, then '
                      'download')
  parser.add_argument('--root', metavar='DIR',
                      help='pipeline artifacts and ML Metadata (default '
                      './pipeline_output)')
  parser.add_argument('--serving-dir', metavar='DIR',
                      help='where the chosen model is pushed (default '
                      './serving_model)')
  parser.set_defaults(func=main)


def preflight(config: config_lib.PipelineConfig) -> None:
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
    check = getattr(module, 'preflight', None)
    if check:
      print(f'{name}: weights from {check(trainer)}', flush=True)


def main(args: argparse.Namespace) -> int:
  config = build_config(args)
  prepare_imports()
  from components.ingest import sources
  source = sources.resolve_source(config.data.source, config.data.cache_dir,
                                  config.data.limits())
  print(f'Data: {source.kind} at {source.path}', flush=True)
  preflight(config)
  from pipeline import local
  start = time.time()
  record = local.run(config, source)
  print(local.summary(record))
  from pipeline import timings
  path = timings.write(record, config.root)
  print(f'Total wall time {time.time() - start:.0f} s (timings: {path})')
  return 0
