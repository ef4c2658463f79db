"""The ModelSelector: the choice, the served-model baseline, the pre-push check
and the atomic, versioned push (components/selector.py, components/push.py).

Run by pytest. The executor runs on tiny SavedModels made here (an oracle that
reads the label, a model that always answers class 0, one that answers NaN)
and a 20-example test split; TFMA's accuracy is stubbed per candidate.
"""

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from components import push as push_lib
from components import settings
from components import selector
from components.selector import Baseline, Candidate
from tests.conftest import save_fake_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_better_blessed_candidate_is_chosen():
  decision = selector.select([Candidate('alexnet', 0.81, True),
                              Candidate('vgg16', 0.86, True)])
  assert decision.chosen == 'vgg16'
  assert '0.8100' in decision.reason and '0.8600' in decision.reason
  assert 'nothing was served, so the absolute threshold alone applies' in (
      decision.reason)


def test_unblessed_candidate_loses_even_when_more_accurate():
  decision = selector.select([Candidate('alexnet', 0.81, True),
                              Candidate('vgg16', 0.95, False)])
  assert decision.chosen == 'alexnet'


def test_nothing_chosen_when_none_passes():
  decision = selector.select([Candidate('alexnet', 0.5, False),
                              Candidate('vgg16', 0.6, False)])
  assert decision.chosen is None
  assert 'no candidate passed' in decision.reason


def test_any_number_of_candidates_and_ties_keep_the_first():
  names = [f'm{i}' for i in range(5)]
  decision = selector.select([Candidate(n, 0.9, True) for n in names])
  assert decision.chosen == 'm0'


@pytest.mark.parametrize('served, tolerance, chosen, words', [
    (0.80, 0.0, 'vgg16', 'beats the served version 3'),
    (0.86, 0.0, 'vgg16', 'ties the served version 3'),
    (0.87, 0.02, 'vgg16', 'trails within tolerance the served version 3'),
    (0.87, 0.0, None, 'is worse than the served version 3'),
    (None, 0.0, 'vgg16', 'could not be evaluated (OSError: gone)'),
])
def test_the_served_model_is_the_bar(served, tolerance, chosen, words):
  baseline = Baseline(3, '/serving/cifar10/3', served, '' if served else
                      'OSError: gone')
  decision = selector.select([Candidate('alexnet', 0.81, True),
                              Candidate('vgg16', 0.86, True)], baseline, tolerance)
  assert decision.chosen == chosen
  assert words in decision.reason, decision.reason
  if served:
    assert f'which scores {served:.4f} on the same test split' in decision.reason


@pytest.fixture(scope='module')
def models(tmp_path_factory):
  """kind -> a Model artifact's uri holding Format-Serving/ of that kind."""
  base = tmp_path_factory.mktemp('models')
  for kind in ('oracle', 'zero', 'nan'):
    save_fake_model(str(base / kind / 'Format-Serving'), kind)
  return {kind: str(base / kind) for kind in ('oracle', 'zero', 'nan')}


@pytest.fixture(scope='module')
def examples(tmp_path_factory):
  """An Examples artifact whose test split holds 20 examples, labels i % 10."""
  import tensorflow as tf
  from tfx.types import standard_artifacts

  from components.ingest.executor import to_example
  artifact = standard_artifacts.Examples()
  artifact.uri = str(tmp_path_factory.mktemp('examples'))
  os.makedirs(os.path.join(artifact.uri, 'Split-test'))
  with tf.io.TFRecordWriter(os.path.join(artifact.uri, 'Split-test', 'd.gz'),
                            options='GZIP') as writer:
    for i in range(20):
      writer.write(to_example(f'test/{i}', i % 10, b'png bytes'))
  return artifact


def run_selector(tmp_path, monkeypatch, models, examples, candidates,
                 tolerance=0.0) -> dict:
  """Runs the executor on candidates [(name, model kind, accuracy, blessed)]."""
  from tfx.types import standard_artifacts
  accuracy = {}
  inputs = {'examples': [examples]}
  for name, kind, value, blessed in candidates:
    model = standard_artifacts.Model()
    model.uri = models[kind]
    evaluation = standard_artifacts.ModelEvaluation()
    evaluation.uri = f'{tmp_path}/evaluation/{name}'
    accuracy[evaluation.uri] = value
    blessing = standard_artifacts.ModelBlessing()
    blessing.set_int_custom_property('blessed', int(blessed))
    inputs.update({f'{name}_model': [model], f'{name}_evaluation': [evaluation],
                   f'{name}_blessing': [blessing]})
  monkeypatch.setattr(selector, 'read_accuracy', accuracy.__getitem__)
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / 'pushed' / uuid.uuid4().hex)
  selector.Executor().Do(inputs, {'pushed_model': [pushed]}, {
      'candidates': json.dumps([c[0] for c in candidates]),
      'settings': settings.to_json(push_lib.ServingConfig(
          directory=str(tmp_path / 'serving'), model_name='cifar10',
          baseline_tolerance=tolerance, check_examples=4))})
  with open(os.path.join(pushed.uri, selector.DECISION_FILE)) as f:
    decision = json.load(f)
  assert json.loads(pushed.get_string_custom_property('decision')) == decision
  return decision


def snapshot(folder) -> dict:
  """relative path -> (size, mtime) of every file, hidden ones included."""
  return {os.path.relpath(os.path.join(d, f), folder):
          (os.path.getsize(os.path.join(d, f)),
           os.path.getmtime(os.path.join(d, f)))
          for d, _, files in os.walk(folder) for f in files}


def test_a_worse_candidate_is_not_pushed_over_the_served_model(
    tmp_path, monkeypatch, models, examples):
  first = run_selector(tmp_path, monkeypatch, models, examples,
                       [('alexnet', 'oracle', 0.99, True)])
  assert first['version'] == 1 and first['baseline'] is None
  served = tmp_path / 'serving' / 'cifar10'
  before = snapshot(served)
  worse = run_selector(tmp_path, monkeypatch, models, examples,
                       [('alexnet', 'zero', 0.1, True)])
  assert worse['chosen'] is None and 'destination' not in worse
  assert worse['baseline']['accuracy'] == 1.0 and worse['baseline']['version'] == 1
  assert worse['reason'].startswith(
      'the best blessed candidate, alexnet (0.1000), is worse than the served '
      'version 1, which scores 1.0000 on the same test split '
      '(serving.baseline_tolerance 0)')
  assert push_lib.versions(str(served)) == [1]
  assert {k: v for k, v in snapshot(served).items() if 'lock' not in k} == {
      k: v for k, v in before.items() if 'lock' not in k}
  again = run_selector(tmp_path, monkeypatch, models, examples,
                       [('alexnet', 'oracle', 1.0, True)])
  assert again['chosen'] is None
  assert again['reason'] == ('alexnet is already served as version 1: nothing '
                             'new to push')


def test_a_better_candidate_replaces_a_weaker_served_model(
    tmp_path, monkeypatch, models, examples):
  run_selector(tmp_path, monkeypatch, models, examples,
               [('alexnet', 'zero', 0.1, True)])
  better = run_selector(tmp_path, monkeypatch, models, examples,
                        [('alexnet', 'zero', 0.1, True),
                         ('vgg16', 'oracle', 0.95, True)])
  assert better['chosen'] == 'vgg16' and better['version'] == 2
  assert better['baseline']['accuracy'] == pytest.approx(0.1)
  assert 'beats the served version 1' in better['reason']


def test_a_candidate_that_fails_the_pre_push_check_is_never_pushed(
    tmp_path, monkeypatch, models, examples):
  fallback = run_selector(tmp_path, monkeypatch, models, examples,
                          [('alexnet', 'zero', 0.1, True),
                           ('vgg16', 'nan', 0.9, True)])
  assert fallback['chosen'] == 'alexnet' and fallback['version'] == 1
  assert 'not finite distributions' in fallback['check_failures']['vgg16']
  assert fallback['reason'].startswith(
      'vgg16 failed the pre-push check (its SavedModel did not answer '
      'serving_default: ValueError: serving_default answered probabilities that '
      'are not finite')
  served = tmp_path / 'serving' / 'cifar10'
  before = snapshot(served)
  none = run_selector(tmp_path, monkeypatch, models, examples,
                      [('vgg16', 'nan', 0.9, True)])
  assert none['chosen'] is None and none['reason'].startswith(
      'vgg16 failed the pre-push check') and none['reason'].endswith(
      'then: no candidate is left')
  assert sorted(os.listdir(served)) == ['.last_version', '.push.lock', '1']
  assert snapshot(served).keys() == before.keys()


def test_an_unloadable_served_model_does_not_block_a_good_candidate(
    tmp_path, monkeypatch, models, examples):
  broken = tmp_path / 'serving' / 'cifar10' / '4'
  broken.mkdir(parents=True)
  (broken / 'saved_model.pb').write_bytes(b'not a graph')
  decision = run_selector(tmp_path, monkeypatch, models, examples,
                          [('alexnet', 'oracle', 0.9, True)])
  assert decision['version'] == 5
  assert decision['baseline']['accuracy'] is None
  assert 'the served version 4 could not be evaluated' in decision['reason']


def _model_dir(tmp_path):
  model = tmp_path / 'model'
  (model / 'variables').mkdir(parents=True)
  (model / 'saved_model.pb').write_bytes(b'pb')
  return model


def test_push_writes_increasing_versions_without_leftovers(tmp_path):
  model = _model_dir(tmp_path)
  serving = tmp_path / 'serving'
  first = selector.push(str(model), str(serving), 'cifar10')
  second = selector.push(str(model), str(serving), 'cifar10')
  assert os.path.basename(first) == '1' and os.path.basename(second) == '2'
  assert push_lib.versions(str(serving / 'cifar10')) == [1, 2]
  assert (serving / 'cifar10' / '2' / 'saved_model.pb').read_bytes() == b'pb'
  os.rename(second, str(serving / 'cifar10' / '.removed'))  # someone deletes 2
  third = selector.push(str(model), str(serving), 'cifar10')
  assert os.path.basename(third) == '3'  # versions only increase


def test_failed_copy_leaves_no_partial_version(tmp_path, monkeypatch):
  model = _model_dir(tmp_path)
  serving = tmp_path / 'serving'
  selector.push(str(model), str(serving), 'cifar10')

  def broken_rename(src, dst):
    raise OSError('disk full')
  monkeypatch.setattr(selector.os, 'rename', broken_rename)
  with pytest.raises(OSError):
    selector.push(str(model), str(serving), 'cifar10')
  assert sorted(os.listdir(serving / 'cifar10')) == [
      '.last_version', '.push.lock', '1']


def test_a_push_killed_midway_leaves_the_served_versions_intact(tmp_path):
  model = _model_dir(tmp_path)
  model_dir = tmp_path / 'serving' / 'cifar10'
  selector.push(str(model), str(model_dir.parent), 'cifar10')
  marker = tmp_path / 'staged'
  code = (f'import sys, time; sys.path.insert(0, {ROOT!r})\n'
          'from components import push\n'
          'def check(staging):\n'
          f'  open({str(marker)!r}, "w").close(); time.sleep(120)\n'
          f'with push.locked({str(model_dir)!r}):\n'
          f'  push.push({str(model)!r}, {str(model_dir)!r}, check)\n')
  process = subprocess.Popen([sys.executable, '-c', code])
  deadline = time.time() + 60
  while not marker.exists() and time.time() < deadline:
    time.sleep(0.05)
  assert marker.exists()
  process.kill()  # SIGKILL between the copy and the rename
  process.wait()
  leftovers = [n for n in os.listdir(model_dir) if n.startswith('.staging-')]
  assert len(leftovers) == 1  # hidden: a server loads only integer folders
  assert push_lib.versions(str(model_dir)) == [1]
  again = selector.push(str(model), str(model_dir.parent), 'cifar10')  # unlocked
  assert os.path.basename(again) == '2'
  assert not [n for n in os.listdir(model_dir) if n.startswith('.staging-')]
