"""Where a run's time went: wall time per component, and per Trainer its pace.

Called by `pipeline/local.py` (the table in the end-of-run summary) and by
`cifar10-tfx run` (pipeline/commands/run.py), which writes it as
`timings.json` under `<root>/runs/<run id>/` for people and scripts
(`bench/pipeline_cost.py`). `runs` and `report` read ML Metadata instead.
"""

from __future__ import annotations

import json
import os
import re

HISTORY_FILE = 'history.json'  # written by components/trainers/loop.py


def _trainer_pace(node) -> dict:
  """Epochs run and median images/second, from the Trainer's history.json."""
  runs = node.outputs.get('model_run') or []
  if not runs:
    return {}
  path = os.path.join(runs[0].uri, HISTORY_FILE)
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    rows = json.load(f)
  rates = sorted(r.get('images_per_second', 0.0) for r in rows)
  return {'epochs': len(rows),
          'images_per_second': rates[len(rates) // 2] if rates else 0.0}


def table(record) -> list[dict]:
  """One row per component of the run: id, state, seconds (+ Trainer pace)."""
  rows = []
  for node in record.nodes:
    row = {'component': node.node_id, 'state': node.state.lower(),
           'seconds': round(node.seconds, 1)}
    if node.node_id.startswith('Trainer'):
      row.update(_trainer_pace(node))
    rows.append(row)
  return rows


def run_dir(root: str, run_id: str) -> str:
  return os.path.join(root, 'runs', re.sub(r'[^\w.-]', '_', run_id))


def write(record, root: str) -> str:
  """Writes `timings.json` for this run; returns its path."""
  folder = run_dir(root, record.run_id)
  os.makedirs(folder, exist_ok=True)
  path = os.path.join(folder, 'timings.json')
  with open(path, 'w') as f:
    json.dump({'run_id': record.run_id, 'components': table(record),
               'total_seconds': round(sum(n.seconds for n in record.nodes), 1)},
              f, indent=2)
  return path


def read(root: str, run_id: str) -> dict | None:
  path = os.path.join(run_dir(root, run_id), 'timings.json')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def format_table(rows: list[dict]) -> str:
  lines = [f'  {"component":<22} {"state":<9} {"seconds":>9}  pace']
  for row in rows:
    pace = ''
    if 'epochs' in row:
      pace = f'{row["epochs"]} epochs, {row["images_per_second"]:.0f} img/s'
    lines.append(f'  {row["component"]:<22} {row["state"]:<9} '
                 f'{row["seconds"]:9.1f}  {pace}')
  return '\n'.join(lines)
