"""The per-component timing table of a run, printed and written as JSON."""

import json

import pytest

from pipeline import timings

pytestmark = pytest.mark.e2e


def test_timings_table_covers_every_component_with_trainer_pace(quick_run):
  tmp, _, config, record = quick_run
  rows = timings.table(record)
  assert [r['component'] for r in rows] == [n.node_id for n in record.nodes]
  trainers = [r for r in rows if r['component'].startswith('Trainer')]
  assert len(trainers) == 2
  assert all(r['epochs'] == 1 and r['images_per_second'] > 0 for r in trainers)
  path = timings.write(record, config.root)
  with open(path) as f:
    written = json.load(f)
  assert written['components'] == rows
  assert timings.read(config.root, record.run_id) == written
  text = timings.format_table(rows)
  assert 'Transform' in text and 'img/s' in text
