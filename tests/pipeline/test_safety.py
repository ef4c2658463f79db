"""Crashes, concurrency and regressions never reach serving: one scenario.

Whole runs cost about a minute each on 2 cores, so one module-scoped scenario
serves every check:

1. a model is already served (version 1): an "oracle" SavedModel that reads
   the label from each example, 100% accurate on any test split;
2. run A starts as the real command in a subprocess (alexnet for 2 epochs);
3. while A holds the root, a second run on it (the real command, in-process)
   must end at once with "Another run holds this root";
4. A is killed with SIGKILL as soon as alexnet's first epoch is checkpointed
   (its history.json appears in the Trainer's checkpoint folder);
5. run C, the same command again, reuses every finished component from
   cache, resumes alexnet from its checkpoint, completes, and pushes nothing:
   its candidates score far below the served oracle on the same test split
   (whose images are noise, so no candidate can tie it).
"""

from __future__ import annotations

import contextlib
import glob
import io
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from tests.conftest import save_fake_model, write_image_tree

pytestmark = pytest.mark.e2e
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHED = ('Cifar10ExampleGen', 'ImportSchemaGen', 'StatisticsGen',
          'ExampleValidator', 'ImageValidator', 'DataGate', 'Transform')


def snapshot(folder: str) -> dict:
  """Every file under `folder` -> its bytes (not the push lock: it is empty)."""
  return {os.path.relpath(os.path.join(d, f), folder):
          open(os.path.join(d, f), 'rb').read()
          for d, _, files in os.walk(folder) for f in files
          if f != '.push.lock'}


def _wait(what: str, ready, process, log: str, seconds: float):
  deadline = time.time() + seconds
  while time.time() < deadline:
    found = ready()
    if found:
      return found
    if process.poll() is not None:
      pytest.fail(f'run A ended (rc {process.returncode}) before {what}:\n'
                  + open(log).read()[-3000:])
    time.sleep(0.1)
  pytest.fail(f'no {what} after {seconds:.0f} s:\n' + open(log).read()[-3000:])


def _history(root: str) -> list | None:
  for path in glob.glob(os.path.join(root, 'artifacts', 'Trainer_alexnet',
                                     'checkpoints', '*', 'history.json')):
    try:
      with open(path) as f:
        rows = json.load(f)
    except (OSError, ValueError):  # being written
      continue
    if rows:
      return [os.path.dirname(path), rows]
  return None


@pytest.fixture(scope='module')
def scenario(tmp_path_factory):
  from components.trainers import alexnet, vgg16  # noqa: F401  (warm imports)
  from pipeline import cli, runs
  tmp = tmp_path_factory.mktemp('safety')
  data = write_image_tree(tmp / 'data', n_train=10, n_test=4)
  rng = np.random.default_rng(7)
  for path in glob.glob(os.path.join(data, 'test', '*', '*.png')):
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), np.uint8)).save(path)
  root, serving = str(tmp / 'root'), str(tmp / 'serving')
  save_fake_model(os.path.join(serving, 'cifar10', '1'), 'oracle')
  served_before = snapshot(serving)
  argv = ['run', '--preset', 'quick', '--data', data, '--root', root,
          '--serving-dir', serving, '--set', 'data.validation_fraction=0.2',
          '--set', 'evaluation.accuracy_threshold=0', '--set', 'vgg16.weights=none',
          '--set', 'alexnet.batch_size=16', '--set', 'vgg16.batch_size=16',
          '--set', 'alexnet.epochs=2']
  log = str(tmp / 'run_a.log')
  with open(log, 'w') as out:
    run_a = subprocess.Popen(
        [sys.executable, '-m', 'pipeline.cli', *argv], cwd=ROOT, stdout=out,
        stderr=subprocess.STDOUT, start_new_session=True,
        env=dict(os.environ, PYTHONUNBUFFERED='1'))
  try:
    _wait('first component', lambda: 'Cifar10ExampleGen ...' in open(log).read(),
          run_a, log, 300)
    second_err, start = io.StringIO(), time.time()
    with contextlib.redirect_stderr(second_err), contextlib.redirect_stdout(
        io.StringIO()):
      second_rc = cli.main(argv)
    second = (second_rc, second_err.getvalue(), time.time() - start,
              run_a.poll() is None)
    _wait('checkpointed epoch', lambda: _history(root), run_a, log, 900)
    os.killpg(run_a.pid, signal.SIGKILL)
    run_a.wait()
  finally:
    if run_a.poll() is None:
      os.killpg(run_a.pid, signal.SIGKILL)
      run_a.wait()
  checkpoint_dir, rows_at_kill = _history(root)
  after_kill = {'served': snapshot(serving),
                'runs': runs.list_runs(os.path.join(root, 'metadata.sqlite'))}
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    rc = cli.main(argv)
  records = runs.list_runs(os.path.join(root, 'metadata.sqlite'))
  return dict(served_before=served_before, second=second, after_kill=after_kill,
              checkpoint_dir=checkpoint_dir, rows_at_kill=rows_at_kill,
              rc=rc, stdout=out.getvalue(), records=records, serving=serving)


def test_a_second_run_on_a_held_root_ends_at_once(scenario):
  rc, err, seconds, first_still_running = scenario['second']
  assert rc == 1 and first_still_running
  assert err.startswith('cifar10-tfx: Another run holds this root (')
  assert 'Wait for it to finish, or pass another --root.' in err
  assert 'Traceback' not in err and seconds < 10


def test_the_killed_run_left_serving_and_metadata_usable(scenario):
  assert scenario['after_kill']['served'] == scenario['served_before']
  killed = scenario['after_kill']['runs'][0]
  states = {n.node_id: n.state for n in killed.nodes}
  assert all(states[n] == 'COMPLETE' for n in CACHED)
  assert states['Trainer_alexnet'] not in ('COMPLETE', 'CACHED')
  assert 'ModelSelector' not in states
  assert len(scenario['records']) == 2  # and the store took the next run


def test_the_restarted_run_reuses_the_cache_and_resumes_training(scenario):
  assert scenario['rc'] == 0
  record = scenario['records'][0]
  states = {n.node_id: n.state for n in record.nodes}
  assert {n: states[n] for n in CACHED} == {n: 'CACHED' for n in CACHED}
  assert states['Trainer_alexnet'] == 'COMPLETE'
  assert set(states.values()) <= {'CACHED', 'COMPLETE'}
  model = record.node('Trainer_alexnet').outputs['model'][0]
  with open(os.path.join(model.uri, 'Format-Serving', 'assets.extra',
                         'model_info.json')) as f:
    info = json.load(f)
  assert info['checkpoint_dir'] == scenario['checkpoint_dir']
  assert not os.path.exists(scenario['checkpoint_dir'])  # gone once exported
  run_dir = record.node('Trainer_alexnet').outputs['model_run'][0].uri
  with open(os.path.join(run_dir, 'history.json')) as f:
    rows = json.load(f)
  before = scenario['rows_at_kill']  # 1 row, unless the kill came late
  assert before and rows[:len(before)] == before  # finished epochs not redone
  assert len(rows) == 2 and info['epochs_run'] == 2


def test_a_worse_candidate_is_not_pushed_and_the_summary_says_why(scenario):
  from pipeline import runs
  decision = runs.decision(scenario['records'][0])
  assert decision['chosen'] is None and 'destination' not in decision
  assert decision['baseline']['version'] == 1
  assert decision['baseline']['accuracy'] == 1.0
  best = max(c['accuracy'] for c in decision['candidates'])
  assert best < 1.0
  assert 'Nothing pushed: the best blessed candidate, ' in scenario['stdout']
  assert ('is worse than the served version 1, which scores 1.0000 on the same '
          'test split (serving.baseline_tolerance 0)') in scenario['stdout']
  assert snapshot(scenario['serving']) == scenario['served_before']
