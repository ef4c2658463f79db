"""`cifar10-tfx runs` lists every run newest first; a cached run reports the
same artifacts as the run that made them; unknown roots and runs get one
message."""

from __future__ import annotations

import os
import time

import pytest

from pipeline import cli, runs
from tests.conftest import run_pipeline


def _node(node_id: str, state: str) -> runs.NodeRun:
  return runs.NodeRun(node_id, state, 1.0, {})


def test_status_words():
  ids = ('StatisticsGen', 'Trainer_alexnet', 'ModelSelector')
  record = runs.RunRecord('r', 0.0, [_node(i, 'COMPLETE') for i in ids])
  assert runs.status(record) == 'complete'
  record.nodes[0].state = 'CACHED'
  assert runs.status(record) == 'complete (1 of 3 cached)'
  for node in record.nodes:
    node.state = 'CACHED'
  assert runs.status(record) == 'cached'
  record.nodes[1].state = 'FAILED'
  assert runs.status(record) == 'failed at Trainer_alexnet'
  unfinished = runs.RunRecord('r', 0.0, [_node('StatisticsGen', 'COMPLETE')])
  assert runs.status(unfinished) == 'incomplete'
  assert runs.model_names(record) == ['alexnet']


def _selector_run(run_id: str, started: float, artifact_id: int, state: str,
                  chosen: str | None, version: int = 0) -> runs.RunRecord:
  """A run whose ModelSelector output `artifact_id` with this decision."""
  import json
  from ml_metadata.proto import metadata_store_pb2
  pushed = metadata_store_pb2.Artifact(id=artifact_id)
  pushed.custom_properties['decision'].string_value = json.dumps({
      'chosen': chosen, 'version': version, 'reason': '',
      'candidates': [{'name': 'alexnet', 'accuracy': 0.5, 'blessed': True},
                     {'name': 'vgg16', 'accuracy': 0.75, 'blessed': True}]})
  node = runs.NodeRun('ModelSelector', state, 1.0, {'pushed_model': [pushed]})
  return runs.RunRecord(run_id, started, [node])


def test_previous_push_skips_cached_repeats_and_failed_selections():
  from pipeline.commands.runs import pushed_text
  first = _selector_run('a', 1.0, 10, 'COMPLETE', 'alexnet', 1)
  nothing = _selector_run('b', 2.0, 11, 'COMPLETE', None)
  second = _selector_run('c', 3.0, 12, 'COMPLETE', 'vgg16', 2)
  repeat = _selector_run('d', 4.0, 12, 'CACHED', 'vgg16', 2)
  records = [repeat, second, nothing, first]
  assert runs.previous_push(records, first) is None
  assert runs.previous_push(records, second)[0] is first
  assert runs.previous_push(records, repeat)[0] is first  # same push as c
  assert runs.producer(records, 12) is second
  assert pushed_text(second, records) == 'v2 vgg16'
  assert pushed_text(repeat, records) == ('v2 vgg16 (cached: pushed by an '
                                          'earlier run)')
  assert pushed_text(nothing, records) == 'nothing (no model passed)'
  assert runs.find_run(records, 'c') is second
  with pytest.raises(runs.RunNotFound, match="No run 'z'"):
    runs.find_run(records, 'z')


def test_a_run_that_kept_the_served_model_says_so():
  from pipeline.commands.runs import kept_text
  blessed = [{'name': 'alexnet', 'accuracy': 0.5, 'blessed': True}]
  served = {'version': 3, 'path': '/s/3', 'accuracy': 0.6, 'error': ''}
  assert kept_text({'candidates': blessed, 'baseline': served}) == (
      'kept v3 (served model as good)')
  same = dict(served, accuracy=None)
  assert kept_text({'candidates': blessed, 'baseline': same,
                    'reason': 'alexnet is already served as version 3'}) == (
                        'kept v3 (served model as good)')
  assert kept_text({'candidates': blessed, 'baseline': same,
                    'check_failures': {'alexnet': 'NaN'}}) == (
                        'nothing (the pre-push check failed)')
  failed = [dict(blessed[0], blessed=False)]
  assert kept_text({'candidates': failed, 'baseline': None}) == (
      'nothing (no model passed)')


def test_runs_without_a_store_gives_one_message(tmp_path, capsys):
  assert cli.main(['runs', '--root', str(tmp_path / 'nowhere')]) == 1
  err = capsys.readouterr().err
  assert 'No pipeline runs under' in err and 'cifar10-tfx run' in err
  assert 'Traceback' not in err


@pytest.fixture(scope='module')
def two_runs(quick_run):
  """At least two runs on the fixture root: adds a cached one if needed."""
  _, data, config, _ = quick_run
  path = os.path.abspath(config.metadata_path)
  if len(runs.list_runs(path)) < 2:
    run_pipeline(config, data)
  return config, runs.list_runs(path)


@pytest.mark.e2e
def test_runs_lists_both_runs_newest_first(quick_run, two_runs, capsys):
  config, records = two_runs
  first = quick_run[3]
  start = time.time()
  assert cli.main(['runs', '--root', config.root]) == 0
  assert time.time() - start < 5  # no TensorFlow on this path
  lines = capsys.readouterr().out.splitlines()
  assert lines[0].split()[:3] == ['STARTED', 'RUN', 'ID']
  assert [line.split()[2] for line in lines[1:]] == [r.run_id for r in records]
  assert [r.started for r in records] == sorted(
      (r.started for r in records), reverse=True)
  line = next(line for line in lines if first.run_id in line)
  decision = runs.decision(first)
  for candidate in decision['candidates']:
    assert f'{candidate["accuracy"]:.4f}' in line
  assert f'v1 {decision["chosen"]}' in line and 'complete' in line
  cached = next(r for r in records if runs.status(r) == 'cached')
  line = next(line for line in lines if cached.run_id in line)
  assert 'cached: pushed by an earlier run' in line


@pytest.mark.e2e
def test_a_cached_run_reports_the_artifacts_it_reused(quick_run, two_runs):
  from pipeline.report import facts
  config, records = two_runs
  first = quick_run[3]
  cached = next(r for r in records if runs.status(r) == 'cached')
  path = os.path.abspath(config.metadata_path)
  original, reused = facts.gather(path, first.run_id), facts.gather(
      path, cached.run_id)
  assert reused['decision']['pushed_by'] == first.run_id
  assert reused['decision']['chosen'] == original['decision']['chosen']
  for a, b in zip(original['models'], reused['models']):
    assert a['metrics'] == b['metrics'] and a['confusion'] == b['confusion']
    assert a['history'] == b['history'] and a['saved_model'] == b['saved_model']
  origins = {n['id']: n['origin'] for n in reused['nodes']}
  assert origins['Trainer_alexnet'] is not None
  assert reused['data'] == original['data']


@pytest.mark.e2e
def test_report_of_an_unknown_run_names_the_runs(two_runs, tmp_path, capsys):
  config, records = two_runs
  code = cli.main(['report', '--root', config.root, '--run', 'no-such-run',
                   '--output', str(tmp_path / 'r.html')])
  err = capsys.readouterr().err
  assert code == 1 and "No run 'no-such-run'" in err
  assert records[0].run_id in err and 'Traceback' not in err
  assert not (tmp_path / 'r.html').exists()
