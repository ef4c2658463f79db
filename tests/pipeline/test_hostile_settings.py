"""Absurd settings and damaged stores end with one line naming what to fix.

Run by pytest through `pipeline.cli.main` (nothing heavy is imported: each
case fails before TensorFlow or TFX would load) and through
`pipeline.store_checks` and `pipeline.local.run`, whose store checks come
before the run's lock and TFX.
"""

from __future__ import annotations

import os
import sqlite3

import pytest

from pipeline import cli, config as config_lib, local, store_checks
from tests.conftest import fixture_config

pytestmark = pytest.mark.timeout(60)


def outcome(argv: list[str], capsys) -> tuple[int, str]:
  """(exit status, stderr) of the command line."""
  code = cli.main(argv)
  return code, capsys.readouterr().err


@pytest.mark.parametrize('assignment, words', [
    ('alexnet.learning_rate=inf', 'alexnet.learning_rate must be a finite'),
    ('alexnet.learning_rate=1e300', 'alexnet.learning_rate must be <= 100'),
    ('vgg16.momentum=nan', 'vgg16.momentum must be a finite number, got nan'),
    ('vgg16.fine_tune_lr_factor=nan', 'vgg16.fine_tune_lr_factor must be a'),
    ('vgg16.fine_tune_lr_factor=-1', 'vgg16.fine_tune_lr_factor must be >= 1e-09'),
    ('vgg16.input_size=32000', 'vgg16.input_size must be <= 512, got 32000'),
    ('alexnet.batch_size=1000000', 'alexnet.batch_size must be <= 8192'),
    ('alexnet.epochs=100000000000', 'alexnet.epochs must be <= 10000'),
    ('alexnet.warmup_epochs=-inf', 'alexnet.warmup_epochs must be a finite'),
    ('alexnet.rotation_degrees=1e9', 'alexnet.rotation_degrees must be <= 180'),
    ('alexnet.seed=-1', 'alexnet.seed must be >= 1, got -1'),
    ('alexnet.seed=0', 'alexnet.seed must be >= 1, got 0'),
    ('vgg16.seed=2147483647', 'vgg16.seed must be <= 2.14748e'),
    ('alexnet.gpus=100000', 'alexnet.gpus must be <= 64'),
    ('data.validation_fraction=nan', 'data.validation_fraction must be a'),
    ('data.max_file_bytes=0', 'data.max_file_bytes must be >= 1, got 0'),
    ('data.train_per_class=-5', 'data.train_per_class must be >= 0'),
    ('evaluation.accuracy_threshold=nan', 'accuracy_threshold must be a finite'),
    ('evaluation.batch_size=0', 'evaluation.batch_size must be >= 1'),
    ('serving.baseline_tolerance=inf', 'baseline_tolerance must be a finite'),
    ('serving.check_examples=100000000', 'serving.check_examples must be <= 10000'),
    ('image_validation.class_balance_tolerance=inf', 'class_balance_tolerance'),
    ('kubeflow.trainer_memory_gb=nan', 'trainer_memory_gb must be a finite'),
    ('kubeflow.trainer_cpu=0', 'kubeflow.trainer_cpu must be >= 0.1'),
    ('serving.model_name=../escaped', "serving.model_name '../escaped' must be"),
    ('serving.model_name=/etc', "serving.model_name '/etc' must be"),
    ('serving.model_name=..', "serving.model_name '..' must be"),
    ('serving.model_name=a/b', "serving.model_name 'a/b' must be"),
    ('serving.model_name=', "serving.model_name '' must be"),
    ('name=../../x', "name '../../x' must be"),
])
def test_absurd_settings_end_with_one_line(tmp_path, capsys, assignment, words):
  code, err = outcome(['run', '--preset', 'quick', '--root', str(tmp_path / 'r'),
                       '--serving-dir', str(tmp_path / 's'), '--set',
                       assignment], capsys)
  assert code != 0
  assert err.startswith('cifar10-tfx: ') and err.count('\n') == 1, err
  assert words in err
  assert os.listdir(tmp_path) == []  # nothing was written anywhere


def test_every_preset_passes_and_every_float_is_checked():
  for name in config_lib.PRESETS:
    config_lib.validate(config_lib.preset(name))
  config = config_lib.preset('quick')
  floats = [k for k, v in config_lib.settings(config) if isinstance(v, float)]
  assert 'vgg16.fine_tune_lr_factor' in floats and len(floats) > 20


def _real_store(path: str) -> None:
  with sqlite3.connect(path) as db:
    db.execute('CREATE TABLE runs (id INTEGER PRIMARY KEY, name TEXT)')
    db.executemany('INSERT INTO runs (name) VALUES (?)',
                   [('x' * 500,)] * 200)


@pytest.mark.parametrize('damage, words', [
    (lambda p: open(p, 'wb').write(b'<html>not a database</html>' * 10),
     'is not an SQLite database'),
    (lambda p: (_real_store(p), os.truncate(p, os.path.getsize(p) // 3)),
     'is damaged'),
    (lambda p: (_real_store(p), _flip(p, 30000)), 'is damaged'),
    (lambda p: open(p, 'wb').write(b'SQLite format 3\x00' + bytes(5)),
     'is not an SQLite database'),
    (os.mkfifo, 'is not a regular file'),
    (os.mkdir, 'is not a regular file'),
    (lambda p: os.symlink('/dev/zero', p), 'is not a regular file'),
])
def test_a_damaged_store_is_named_before_tfx_opens_it(tmp_path, capsys, damage,
                                                      words):
  root = tmp_path / 'root'
  root.mkdir()
  store = str(root / 'metadata.sqlite')
  damage(store)
  config = fixture_config(tmp_path)
  with pytest.raises(store_checks.StoreError) as caught:
    local.run(config, source=None)
  message = caught.value.message
  assert message.startswith(f'The metadata store {store} ') and words in message
  assert 'move it away' in message
  assert sorted(os.listdir(root)) == ['metadata.sqlite']  # no lock, no artifacts
  assert not os.path.exists(tmp_path / 'serving')
  code, err = outcome(['runs', '--root', str(root)], capsys)
  assert code == 1 and err == f'cifar10-tfx: {message}\n'


def _flip(path: str, offset: int) -> None:
  with open(path, 'r+b') as f:
    f.seek(offset)
    f.write(b'\xff' * 2000)


def test_an_unusable_root_is_named(tmp_path):
  (tmp_path / 'file').write_text('not a folder')
  config = fixture_config(tmp_path, root=str(tmp_path / 'file' / 'root'))
  with pytest.raises(store_checks.StoreError, match='Cannot create the pipeline '
                     'root .*file/root'):
    local.run(config, source=None)
  root = tmp_path / 'root'
  root.mkdir()
  os.symlink(tmp_path / 'file', root / '.lock')  # opening it would truncate it
  config = fixture_config(tmp_path)
  with pytest.raises(store_checks.StoreError, match=r'\.lock is not a plain file'):
    local.run(config, source=None)
  assert (tmp_path / 'file').read_text() == 'not a folder'
  os.remove(root / '.lock')
  open(root / 'metadata.sqlite', 'wb').close()  # empty: SQLite's new store
  store_checks.check_root(str(root), str(root / 'metadata.sqlite'))
