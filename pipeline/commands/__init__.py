"""Subcommands of `cifar10-tfx`, one module each, and what they share.

Called by `pipeline/cli.py`, which imports each module in `COMMANDS` and calls
its `register(subparsers)`; the chosen command's `main(args)` then runs.
Nothing here imports TensorFlow or TFX at import time.
"""

from __future__ import annotations

import argparse
import os
import warnings

from components import errors
from pipeline import config as config_lib
from pipeline import overrides

COMMANDS = ('pipeline.commands.run', 'pipeline.commands.compile',
            'pipeline.commands.deploy', 'pipeline.commands.runs',
            'pipeline.commands.report', 'pipeline.commands.predict')


UserError = errors.UserError  # what every command raises for a user's mistake


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
  """--preset and --set, shared by every command that builds a pipeline."""
  parser.add_argument('--preset', default='full', choices=sorted(config_lib.PRESETS),
                      help='full: all of CIFAR-10, full recipes (default, a GPU '
                      'job); cpu: all of CIFAR-10, recipes sized for a CPU '
                      '(~55 min on 2 cores); quick: a few hundred images, one '
                      'short epoch per model')
  parser.add_argument('--set', dest='overrides', action='append', default=[],
                      metavar='KEY=VALUE',
                      help='override a config field, e.g. alexnet.epochs=3 '
                      '(repeatable)')


def build_config(args: argparse.Namespace) -> config_lib.PipelineConfig:
  """The preset, then the command's own options, then each --set, validated."""
  config = config_lib.preset(args.preset)
  if getattr(args, 'data', None) is not None:
    config.data.source = args.data
  if getattr(args, 'root', None):
    config.root = args.root
  if getattr(args, 'serving_dir', None):
    config.serving.directory = args.serving_dir
  for assignment in args.overrides:
    overrides.apply(config, assignment)
  return config_lib.validate(config)


def prepare_imports() -> None:
  """Before TensorFlow and TFX are imported: cuts their and Google's start-up
  chatter, and defers TFX's Google Cloud extensions (`pipeline.tfx_imports`)."""
  from pipeline import tfx_imports
  tfx_imports.defer_extensions()
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  os.environ.setdefault('GRPC_VERBOSITY', 'ERROR')
  warnings.filterwarnings('ignore', category=FutureWarning)
  warnings.filterwarnings('ignore', category=DeprecationWarning)
  warnings.filterwarnings('ignore', category=UserWarning, module='google')
