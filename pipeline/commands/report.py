"""`cifar10-tfx report`: one self-contained HTML report of a pipeline run.

Called by `pipeline/cli.py`; the work is done by `pipeline.report.build`,
which finds everything through ML Metadata. Prints where the file is and the
decision in one line; `--open` hands the file to the default browser.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
import webbrowser

from pipeline import runs
from pipeline.commands import UserError, prepare_imports
from pipeline.commands.runs import DEFAULT_ROOT, metadata_path


def register(commands) -> None:
  parser = commands.add_parser(
      'report', help='write an HTML report of a run (decision, models side by '
      'side, curves, confusion matrices, data, wrong images)',
      description='Write one self-contained HTML file (no network needed) '
      'describing a pipeline run, read through ML Metadata.')
  parser.add_argument('--root', metavar='DIR', default=DEFAULT_ROOT,
                      help='pipeline root holding metadata.sqlite (default '
                      './pipeline_output)')
  parser.add_argument('--run', metavar='ID',
                      help='run id or a unique prefix of it, as `cifar10-tfx '
                      'runs` lists them (default: the newest run)')
  parser.add_argument('--output', metavar='FILE', default='report.html',
                      help='where to write the HTML (default ./report.html)')
  parser.add_argument('--examples', metavar='N', type=int, default=300,
                      help='test images each model classifies here for the '
                      'latency and the wrong-image grid (default 300; 0 skips)')
  parser.add_argument('--open', action='store_true',
                      help='open the report in the default browser')
  parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
  path = metadata_path(args.root)
  if args.examples < 0:
    raise UserError('--examples must be >= 0.')
  folder = os.path.dirname(os.path.abspath(args.output))
  if os.path.isdir(args.output) or (os.path.isdir(folder) and
                                    not os.access(folder, os.W_OK)):
    raise UserError(f'Cannot write {args.output}: choose a writable file path '
                    'with --output.')
  prepare_imports()
  logging.getLogger('tensorflow').setLevel(logging.ERROR)
  from pipeline import report
  start = time.time()
  try:
    built = report.build(path, args.output, run_id=args.run,
                         examples=args.examples)
  except runs.RunNotFound as error:
    raise UserError(str(error)) from None
  except OSError as error:
    target, failed = (os.path.abspath(args.output),
                      os.path.abspath(str(error.filename or '')))
    if error.filename and (target.startswith(failed) or
                           failed.startswith(target)):
      raise UserError(f'Cannot write {args.output}: {error.strerror}.') from None
    raise
  found = built['decision']
  if found is None:
    outcome = 'no decision recorded'
  elif found.get('chosen'):
    outcome = f'pushed {found["chosen"]} as version {found.get("version")}'
  else:
    outcome = 'nothing pushed'
  print(f'Run {built["run_id"]}: {outcome}.')
  print(f'Report written to {built["output"]} in {time.time() - start:.0f} s')
  if args.open:
    webbrowser.open(f'file://{built["output"]}')
  return 0
