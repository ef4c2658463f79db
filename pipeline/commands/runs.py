"""`cifar10-tfx runs`: one line per pipeline run, newest first.

Called by `pipeline/cli.py`. Everything comes from ML Metadata through
`pipeline.runs` (no TensorFlow import, so it answers in about a second): when
the run started, its status, each model's test accuracy as the ModelSelector
recorded it, and what was pushed (version and model).
"""

from __future__ import annotations

import argparse
import os
import time

from pipeline import runs, store_checks
from pipeline.commands import UserError

DEFAULT_ROOT = 'pipeline_output'


def register(commands) -> None:
  parser = commands.add_parser(
      'runs', help='list the pipeline runs recorded in ML Metadata',
      description='One line per pipeline run, newest first: when, status, test '
      'accuracy per model and what was pushed.')
  parser.add_argument('--root', metavar='DIR', default=DEFAULT_ROOT,
                      help='pipeline root holding metadata.sqlite (default '
                      './pipeline_output)')
  parser.set_defaults(func=main)


def metadata_path(root: str) -> str:
  """The SQLite store under `root`; UserError when there is none."""
  path = os.path.abspath(os.path.join(root, 'metadata.sqlite'))
  if not os.path.exists(path):
    raise UserError(f'No pipeline runs under {os.path.abspath(root)}: there is '
                    'no metadata.sqlite there. Run `cifar10-tfx run` first, or '
                    'pass --root DIR.')
  store_checks.check_store(path)
  return path


def pushed_text(record: runs.RunRecord, records: list[runs.RunRecord]) -> str:
  """'v3 vgg16', 'v3 vgg16 (cached: pushed by an earlier run)', 'nothing' ..."""
  found = runs.decision(record)
  if found is None:
    return '-'
  if not found.get('chosen'):
    return kept_text(found)
  text = f'v{found.get("version", "?")} {found["chosen"]}'
  artifact = runs.pushed_model(record)
  origin = runs.producer(records, artifact.id) if artifact else None
  if origin is not None and origin.run_id != record.run_id:
    text += ' (cached: pushed by an earlier run)'
  return text


def kept_text(found: dict) -> str:
  """Why a run pushed nothing: the served model kept, a failed check, or no
  candidate passing its thresholds."""
  baseline = found.get('baseline') or {}
  blessed = any(c.get('blessed') for c in found.get('candidates', []))
  failed = found.get('check_failures') or {}
  if blessed and baseline.get('version') and (
      baseline.get('accuracy') is not None or 'already served' in found.get(
          'reason', '')):
    return f'kept v{baseline["version"]} (served model as good)'
  if blessed and failed:
    return 'nothing (the pre-push check failed)'
  return 'nothing (no model passed)'


def lines(records: list[runs.RunRecord]) -> list[str]:
  """The header and one line per run, in the order given."""
  names: list[str] = []
  for record in records:
    names += [n for n in runs.model_names(record) if n not in names]
  rows = [['STARTED', 'RUN ID', 'STATUS'] + [f'{n} acc' for n in names]
          + ['PUSHED']]
  for record in records:
    accuracies = {c['name']: c['accuracy'] for c in
                  (runs.decision(record) or {}).get('candidates', [])}
    rows.append(
        [time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(record.started)),
         record.run_id, runs.status(record)]
        + [f'{accuracies[n]:.4f}' if n in accuracies else '-' for n in names]
        + [pushed_text(record, records)])
  widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
  return ['  '.join(cell.ljust(w) for cell, w in zip(row, widths)) + '  '
          + row[-1] for row in rows]


def main(args: argparse.Namespace) -> int:
  path = metadata_path(args.root)
  records = runs.list_runs(path)
  if not records:
    print(f'No pipeline runs recorded in {path} yet.')
    return 0
  print('\n'.join(lines(records)))
  return 0
