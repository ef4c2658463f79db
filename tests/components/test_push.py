"""The serving push on an object store (components/push.py, components/fileio.py).

Run by pytest. Kubeflow pushes to a bucket (gs://, s3://); here TensorFlow's
in-memory file system `ram://` stands in for one: it is reached only through
gfile, like a bucket, so any `os`/`shutil` call left on the path would fail.
The local-disk push is tested in test_selector.py.
"""

import json
import os
import threading
import time
import uuid

import pytest

from components import fileio, model_check, push, selector
from components.selector import Candidate
from tests.conftest import save_fake_model


def bucket() -> str:
  return f'ram://bucket-{uuid.uuid4().hex[:8]}'


@pytest.fixture(scope='module')
def saved_models(tmp_path_factory):
  base = tmp_path_factory.mktemp('models')
  return {kind: save_fake_model(str(base / kind), kind) for kind in ('oracle', 'nan')}


@pytest.fixture(scope='module')
def test_examples():
  from components.ingest.executor import to_example
  return [to_example(f'test/{i}', i % 10, b'png') for i in range(20)], [
      i % 10 for i in range(20)]


def test_fileio_copies_lists_and_removes_trees_on_a_url(saved_models):
  remote = f'{bucket()}/copy'
  fileio.copy_tree(saved_models['oracle'], remote)
  local_files = fileio.files_under(saved_models['oracle'])
  assert local_files and fileio.files_under(remote) == local_files
  assert 'saved_model.pb' in fileio.listdir(remote)
  assert fileio.isdir(remote) and fileio.isfile(f'{remote}/saved_model.pb')
  assert push.same_model(saved_models['oracle'], remote)
  assert not push.same_model(saved_models['nan'], remote)
  fileio.remove_tree(remote)
  assert fileio.listdir(remote) == []


def test_push_to_a_bucket_writes_increasing_versions_and_cleans_up(saved_models):
  serving = bucket()
  first = selector.push(saved_models['oracle'], serving, 'cifar10')
  second = selector.push(saved_models['oracle'], serving, 'cifar10')
  model_dir = f'{serving}/cifar10'
  assert (first, second) == (f'{model_dir}/1', f'{model_dir}/2')
  assert push.versions(model_dir) == [1, 2]
  assert push.same_model(saved_models['oracle'], second)
  assert fileio.listdir(model_dir) == ['.last_version', '1', '2']  # no lock, no staging
  fileio.remove_tree(second)  # someone deletes the newest
  assert selector.push(saved_models['oracle'], serving, 'cifar10').endswith('/3')


def test_saved_model_pb_is_copied_last(saved_models, monkeypatch):
  copied = []
  real = fileio.copy_file
  monkeypatch.setattr(fileio, 'copy_file',
                      lambda s, t: (copied.append(t), real(s, t)))
  destination = selector.push(saved_models['oracle'], bucket(), 'cifar10')
  into_version = [t for t in copied if t.startswith(destination + '/')]
  assert len(into_version) == len(fileio.files_under(saved_models['oracle']))
  assert into_version[-1] == f'{destination}/saved_model.pb'


def test_a_refused_or_failed_push_leaves_the_bucket_as_it_was(saved_models,
                                                              monkeypatch):
  serving = bucket()
  model_dir = f'{serving}/cifar10'
  selector.push(saved_models['oracle'], serving, 'cifar10')
  before = fileio.files_under(model_dir)

  def refuse(staging):
    raise model_check.CheckFailed('does not answer')
  with pytest.raises(model_check.CheckFailed):
    with push.locked(model_dir):
      push.push(saved_models['oracle'], model_dir, refuse)
  assert fileio.files_under(model_dir) == before

  real = fileio.copy_file
  def fail_on_the_version(source, target):  # the copy into 2/ breaks midway
    if target.startswith(f'{model_dir}/2/variables'):
      raise OSError('bucket unavailable')
    real(source, target)
  monkeypatch.setattr(fileio, 'copy_file', fail_on_the_version)
  with pytest.raises(push.PushError, match='bucket unavailable'):
    with push.locked(model_dir):
      push.push(saved_models['oracle'], model_dir)
  assert fileio.files_under(model_dir) == before
  assert push.versions(model_dir) == [1]


def test_the_selector_pushes_the_best_model_to_a_bucket(saved_models, test_examples):
  examples, labels = test_examples
  model_dir = f'{bucket()}/cifar10'
  record = {'check_failures': {}}
  decision, destination = selector.compare_and_push(
      [Candidate('broken', 0.99, True), Candidate('good', 0.9, True)],
      {'broken': saved_models['nan'], 'good': saved_models['oracle']},
      model_dir, examples, labels, 0.0, 4, record)
  assert decision.chosen == 'good' and destination == f'{model_dir}/1'
  assert 'broken failed the pre-push check' in decision.reason
  assert model_check.accuracy(destination, examples, labels) == 1.0
  again, nothing = selector.compare_and_push(
      [Candidate('good', 1.0, True)], {'good': saved_models['oracle']},
      model_dir, examples, labels, 0.0, 4, {'check_failures': {}})
  assert nothing is None and 'already served as version 1' in again.reason
  json.dumps(record)  # what goes into ML Metadata stays serialisable


def test_a_held_lease_blocks_the_next_push_and_a_stale_one_is_taken(monkeypatch):
  monkeypatch.setattr(push, '_POLL_SECONDS', 0.05)
  model_dir = f'{bucket()}/cifar10'
  fileio.makedirs(model_dir)
  lock = os.path.join(model_dir, push.LOCK_FILE)
  with fileio.open_file(lock, 'w') as f:
    f.write(f'someone-else {time.time():.3f}\n')
  entered = threading.Event()

  def take():
    with push.locked(model_dir):
      entered.set()
  thread = threading.Thread(target=take, daemon=True)
  thread.start()
  assert not entered.wait(0.6)  # a fresh lease held by another push
  fileio.remove(lock)  # that push ends
  assert entered.wait(5)
  thread.join(5)
  assert not fileio.exists(lock)  # released after use

  with fileio.open_file(lock, 'w') as f:  # a push that died long ago
    f.write(f'dead {time.time() - push.LEASE_SECONDS - 1:.3f}\n')
  with push.locked(model_dir):
    assert push._read_lease(lock)[0] != 'dead'  # pylint: disable=protected-access


def test_a_model_in_a_bucket_pushes_to_a_local_folder(saved_models, tmp_path):
  """Kubeflow with a serving volume mounted in the ModelSelector pod."""
  remote = f'{bucket()}/model'
  fileio.copy_tree(saved_models['oracle'], remote)
  destination = selector.push(remote, str(tmp_path / 'serving'), 'cifar10')
  assert destination == str(tmp_path / 'serving' / 'cifar10' / '1')
  assert push.same_model(saved_models['oracle'], destination)
  for folder, subfolders, _ in os.walk(saved_models['oracle']):  # empty ones too
    rel = os.path.relpath(folder, saved_models['oracle'])
    assert sorted(os.listdir(os.path.join(destination, rel))) == sorted(
        os.listdir(folder)), rel
