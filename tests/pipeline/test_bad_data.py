"""Bad inputs end the run early with one clear message, and nothing is pushed.

Three layers. The command line rejects a bad configuration before anything
runs. Ingestion rejects what it can name: a path or archive when `--data` is
resolved (seconds), a file or record inside Cifar10ExampleGen (each of those
cases runs the real command in-process up to that component, ~10 s). Then
ExampleValidator + the ImageValidator, through the DataGate, catch what
reaches the examples anyway, before Transform: tested by letting bad records
through ingestion (monkeypatching the reader) and running the real DAG.
Every case starts with a model already served and checks it is untouched.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tarfile

import numpy as np
import pytest
from PIL import Image

from pipeline import cli
from tests.conftest import fixture_config, run_pipeline, write_image_tree

QUICK = ['--set', 'data.validation_fraction=0.2', '--set', 'vgg16.weights=none']


def _ran(root: str) -> set[str]:
  from pipeline import runs
  records = runs.list_runs(os.path.join(root, 'metadata.sqlite'))
  return {n.node_id for r in records for n in r.nodes}


def served(serving: str) -> dict:
  """A model already served (version 1); returns a snapshot to compare with."""
  version = os.path.join(serving, 'cifar10', '1')
  if not os.path.exists(version):
    os.makedirs(os.path.join(version, 'variables'))
    with open(os.path.join(version, 'saved_model.pb'), 'wb') as f:
      f.write(b'the served model')
  return {os.path.relpath(os.path.join(d, f), serving):
          open(os.path.join(d, f), 'rb').read()
          for d, _, files in os.walk(serving) for f in files}


# --- builders: each writes one bad input under `tmp` and returns --data ---

def _tree(tmp, fmt='png') -> str:
  return write_image_tree(tmp / 'tree', n_train=5, n_test=1, fmt=fmt)


def truncated_jpeg(tmp):
  root = _tree(tmp, 'jpg')
  path = os.path.join(root, 'train', 'dog', '0002.jpg')
  data = open(path, 'rb').read()
  open(path, 'wb').write(data[:len(data) // 2])
  return root


def random_bytes_png(tmp):
  root = _tree(tmp)
  with open(os.path.join(root, 'test', 'cat', '0000.png'), 'wb') as f:
    f.write(np.random.default_rng(0).bytes(3000))
  return root


def image_28x28(tmp):
  root = _tree(tmp)
  Image.new('RGB', (28, 28)).save(os.path.join(root, 'train', 'ship', '0001.png'))
  return root


def image_16_bit(tmp):
  root = _tree(tmp)
  pixels = np.full((32, 32), 40000, np.uint16)
  Image.fromarray(pixels).save(os.path.join(root, 'train', 'frog', '0003.png'))
  return root


def _pickles(tmp, damage) -> str:
  from tests.components.ingest.conftest import tar_folder, write_pickles
  folder = str(tmp / 'cifar-10-batches-py')
  batches = write_pickles(folder, per_class=2)
  damage(folder, batches)
  return tar_folder(str(tmp / 'cifar-10-python.tar.gz'), folder,
                    'cifar-10-batches-py')


def label_out_of_range(tmp):
  def damage(folder, batches):
    batch = batches['data_batch_2']
    batch[b'labels'][7] = 10
    with open(os.path.join(folder, 'data_batch_2'), 'wb') as f:
      pickle.dump(batch, f, protocol=2)
  return _pickles(tmp, damage)


def not_a_batch(tmp):
  def damage(folder, _):
    with open(os.path.join(folder, 'data_batch_3'), 'wb') as f:
      pickle.dump(['a', 'list', 'of', 'words'], f)
  return _pickles(tmp, damage)


def non_class_folder(tmp):
  root = _tree(tmp)
  os.rename(os.path.join(root, 'train', 'dog'), os.path.join(root, 'train', 'dogs'))
  return root


def empty_class_folder(tmp):
  root = _tree(tmp)
  shutil.rmtree(os.path.join(root, 'train', 'frog'))
  os.makedirs(os.path.join(root, 'train', 'frog'))
  return root


def empty_split(tmp):
  root = _tree(tmp)
  shutil.rmtree(os.path.join(root, 'test'))
  os.makedirs(os.path.join(root, 'test'))
  return root


def missing_path(tmp):
  return str(tmp / 'nowhere')


def truncated_archive(tmp):
  root = _tree(tmp)
  archive = str(tmp / 'images.tar.gz')
  with tarfile.open(archive, 'w:gz') as tar:
    tar.add(root, arcname='cifar10')
  data = open(archive, 'rb').read()
  open(archive, 'wb').write(data[:len(data) // 2])
  return archive


def unreadable_path(tmp):
  root = _tree(tmp)
  os.chmod(os.path.join(root, 'train'), 0)
  return root


CASES = {  # name: (builder, exit code, words of the message)
    'truncated JPEG': (truncated_jpeg, 1, [
        'bad data: ', 'train/dog/0002.jpg does not decode as an image (the '
        'file is truncated): remove it or fix it.']),
    'random bytes named .png': (random_bytes_png, 1, [
        'test/cat/0000.png does not decode as an image (unknown format): '
        'remove it or fix it.']),
    '28x28 image': (image_28x28, 1, [
        'train/ship/0001.png is 28x28 pixels, not 32x32: remove it or resize it.']),
    '16-bit image': (image_16_bit, 1, [
        'train/frog/0003.png has 16-bit or floating-point pixels (mode I',
        'save it as 8-bit RGB.']),
    'label out of range (pickle)': (label_out_of_range, 1, [
        'cifar-10-batches-py/data_batch_2 in ', ': record 7 has label 10, '
        'outside 0-9: fix or replace the file.']),
    'pickle that is not a batch': (not_a_batch, 1, [
        'cifar-10-batches-py/data_batch_3 in ', 'is not a CIFAR-10 batch (it '
        "lacks the b'data'/b'labels' entries); replace it with the file from "
        'https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz']),
    'non-class folder': (non_class_folder, 1, [
        'train/dogs is not a CIFAR-10 class (or repeats one): rename it to one '
        'of airplane, automobile']),
    'empty class folder': (empty_class_folder, 1, [
        'train/frog is empty: add its images or remove the class']),
    'empty split': (empty_split, 1, [
        'test holds no class folders: put its images in test/<class>/']),
    'missing --data path': (missing_path, 1, [
        'nowhere does not exist. --data accepts: the official '
        'cifar-10-python.tar.gz']),
    'truncated .tar.gz': (truncated_archive, 1, [
        'images.tar.gz is not a readable .tar.gz archive (', '--data accepts']),
    'unreadable --data path': (unreadable_path, 1, [
        'cannot be read ([Errno 13] Permission denied']),
}
CONFIG_CASES = {  # name: (--set, message)
    'negative epochs': ('alexnet.epochs=-2', 'alexnet.epochs must be >= 1, got -2.'),
    'unknown model name': ('resnet50.epochs=3', '--set resnet50.epochs: unknown '
                           'setting. Known keys:'),
    'threshold above 1': ('evaluation.accuracy_threshold=1.5',
                          'evaluation.accuracy_threshold must lie in [0, 1].'),
    'negative baseline tolerance': ('serving.baseline_tolerance=-0.1',
                                    'serving.baseline_tolerance must lie in [0, 1]'),
    'duplicate fraction above 1': (
        'image_validation.max_duplicate_fraction=5',
        'image_validation.max_duplicate_fraction must lie in [0, 1], got 5.0.'),
}


def _cli(tmp, data: str, *extra: str) -> list[str]:
  return ['run', '--preset', 'quick', '--data', data, '--root',
          str(tmp / 'root'), '--serving-dir', str(tmp / 'serving'), *QUICK, *extra]


@pytest.mark.parametrize('case', sorted(CASES))
def test_bad_input_ends_with_one_message_and_serving_unchanged(
    case, tmp_path, capsys):
  build, code, words = CASES[case]
  if case == 'unreadable --data path' and os.geteuid() == 0:
    pytest.skip('root reads everything (tests/components/ingest covers it)')
  before = served(str(tmp_path / 'serving'))
  data = build(tmp_path)
  assert cli.main(_cli(tmp_path, data)) == code
  err = capsys.readouterr().err
  assert err.startswith('cifar10-tfx: ') and 'Traceback' not in err
  for word in words:
    assert word in err, err
  assert served(str(tmp_path / 'serving')) == before
  assert not _ran(str(tmp_path / 'root')) & {'Transform', 'Trainer_alexnet'}


@pytest.mark.parametrize('case', sorted(CONFIG_CASES))
def test_bad_config_value_ends_before_anything_runs(case, tmp_path, capsys):
  assignment, words = CONFIG_CASES[case]
  before = served(str(tmp_path / 'serving'))
  data = _tree(tmp_path)
  assert cli.main(_cli(tmp_path, data, '--set', assignment)) == 2
  err = capsys.readouterr().err
  assert err.startswith('cifar10-tfx: configuration error: ') and words in err
  assert 'Traceback' not in err
  assert served(str(tmp_path / 'serving')) == before
  assert not os.path.exists(tmp_path / 'root')


@pytest.mark.e2e
@pytest.mark.parametrize('bad_record', [
    ('label', 42), ('image', b'these bytes are not an image')])
def test_anomalies_and_image_checks_stop_the_run_before_transform(
    tmp_path, monkeypatch, bad_record):
  """TFDV's anomaly and the image checks' findings, in one message."""
  from components.data_gate import DataValidationError
  from components.ingest import sources
  field, value = bad_record
  real_read_splits = sources.read_splits

  def read_splits_with_a_bad_record(source, splits, **kwargs):
    index = 0
    for split, image_id, label, image in real_read_splits(source, splits,
                                                          **kwargs):
      if split == 'train':
        if index == 20:  # a bird
          label = value if field == 'label' else label
          image = value if field == 'image' else image
        index += 1
      yield split, image_id, label, image
  monkeypatch.setattr(sources, 'read_splits', read_splits_with_a_bad_record)

  # TFDV computes image statistics only from 100 values on (image_stats_generator
  # _VALUES_THRESHOLD): 16 per class (6 airplanes) leaves 121 in train.
  data = write_image_tree(tmp_path / 'data', n_train=16, n_test=1)
  for i in range(6, 16):  # few airplanes: the class balance is off
    os.remove(os.path.join(data, 'train', 'airplane', f'{i:04d}.png'))
  for cls in ('cat', 'ship'):  # two test images that are train images
    shutil.copy(os.path.join(data, 'train', cls, '0005.png'),
                os.path.join(data, 'test', cls, '0000.png'))
  config = fixture_config(tmp_path)
  before = served(config.serving.directory)
  with pytest.raises(DataValidationError) as failure:  # itself, unwrapped
    run_pipeline(config, data)
  message = str(failure.value)
  assert message.startswith('Data validation failed: ExampleValidator found 1 '
                            'anomaly against the curated schema')
  assert f"[train] feature '{field}'" in message
  assert 'and the image checks found' in message
  assert ('[images] train: a class count is 59% off the even share of 12.2 '
          '(allowed 25%): airplane 5, automobile 13') in message
  assert ('[images] test: 2 of 10 images (20.0%) duplicate train/validation '
          'images (allowed 5.0%; 2 exact, 0 near), e.g. test/cat/0000.png ~ '
          'train/cat/0005.png (exact)') in message
  if field == 'image':
    assert '[images] train: 1 of ' in message and 'do not decode' in message
  ran = _ran(config.root)
  assert {'ExampleValidator', 'ImageValidator', 'DataGate'} <= ran
  assert not ran & {'Transform', 'Trainer_alexnet', 'Trainer_vgg16'}
  assert served(config.serving.directory) == before
