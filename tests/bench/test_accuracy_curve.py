"""bench/accuracy_curve.py: the decoded-split cache, the summary line, and a
run under JAX with TensorFlow unimportable (the lent GPU machine's case)."""

import os
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', 'bench'))
import accuracy_curve  # noqa: E402
from components.trainers import device  # noqa: E402
from tests.conftest import write_image_tree  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_cache_round_trip_skips_decoding(tmp_path, monkeypatch):
  calls = []

  def fake_load(source, split, per_class):
    calls.append(split)
    n = {'train': 6, 'validation': 2, 'test': 4}[split]
    return np.full((n, 32, 32, 3), len(calls), np.uint8), np.arange(n)

  monkeypatch.setattr(accuracy_curve, 'load', fake_load)
  cache = str(tmp_path / 'splits.npz')
  first = accuracy_curve.load_all('archive', 0, cache)
  assert calls == ['train', 'validation', 'test'] and os.path.exists(cache)
  second = accuracy_curve.load_all('archive', 0, cache)
  assert calls == ['train', 'validation', 'test']  # read back, not decoded again
  for (x1, y1), (x2, y2) in zip(first, second):
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)


def test_a_cache_of_another_subset_is_refused(tmp_path, monkeypatch):
  """--per-class 500 with a cache of all the data (or the reverse) stops
  with one line instead of training on the wrong set."""
  def fake_load(source, split, per_class):
    n = {'train': 9, 'validation': 1, 'test': 2}[split]
    return np.zeros((n, 32, 32, 3), np.uint8), np.arange(n)
  monkeypatch.setattr(accuracy_curve, 'load', fake_load)
  cache = str(tmp_path / 'subset.npz')
  accuracy_curve.load_all('archive', 1, cache)
  assert len(accuracy_curve.load_all('archive', 1, cache)[0][1]) == 9
  with pytest.raises(SystemExit, match='--per-class 1, not 0'):
    accuracy_curve.load_all('archive', 0, cache)
  # A cache from before the count was recorded: all of CIFAR-10 or unknown.
  old = str(tmp_path / 'old.npz')
  np.savez(old, **{f'{k}_{n}': np.zeros(size, np.uint8) for n, size in
                   (('train', 45_000), ('validation', 5_000), ('test', 10))
                   for k in 'xy'})
  assert len(accuracy_curve.load_all('archive', 0, old)[0][1]) == 45_000
  with pytest.raises(SystemExit, match='--per-class 0, not 500'):
    accuracy_curve.load_all('archive', 500, old)
  np.savez(old, **{f'{k}_{n}': np.zeros(9, np.uint8)
                   for n in ('train', 'validation', 'test') for k in 'xy'})
  with pytest.raises(SystemExit, match='--per-class unknown, not 0'):
    accuracy_curve.load_all('archive', 0, old)


def test_summary_reports_test_accuracy_at_the_best_validation_epoch():
  rows = [dict(epoch=1, wall_s=10, val_acc=0.70, test_acc=0.69),
          dict(epoch=2, wall_s=20, val_acc=0.82, test_acc=0.80),
          dict(epoch=3, wall_s=30, val_acc=0.81, test_acc=0.815)]
  text = accuracy_curve.summarise(rows)
  assert 'best_epoch=2 ' in text and 'test_acc_at_best_val=0.8000' in text
  assert 'last_test_acc=0.8150' in text
  assert 'test_0.7912_at=epoch2/20s' in text and 'test_0.9000_at=never' in text


@pytest.mark.parametrize('argv', [['--epochs', 'x'], ['--bogus'],
                                  ['--preset', 'huge'], ['--model', 'resnet']])
def test_bad_arguments_exit_with_usage(argv):
  with pytest.raises(SystemExit) as exit_info:
    accuracy_curve.main(argv)
  assert exit_info.value.code == 2


# Runs the bench as bench/gpu_curves.sh does on the GPU machine, which has
# JAX and no TensorFlow: KERAS_BACKEND=jax, and any import of TensorFlow or
# of the TFX stack raises, as it would there.
_WITHOUT_TENSORFLOW = """
import importlib.abc, runpy, sys
BLOCKED = ('tensorflow', 'tensorflow_transform', 'tensorflow_model_analysis',
           'tfx', 'tfx_bsl', 'tensorflow_data_validation')
class Block(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path, target=None):
    if name.split('.')[0] in BLOCKED:
      raise ImportError(f'{name}: not installed on the GPU machine')
sys.meta_path.insert(0, Block())
sys.path[:0] = ['bench', '.']
sys.argv = ['accuracy_curve.py'] + sys.argv[1:]
try:
  runpy.run_path('bench/accuracy_curve.py', run_name='__main__')
finally:
  print('imported:', sorted(m for m in sys.modules if m.split('.')[0] in BLOCKED))
"""


def test_runs_under_jax_without_tensorflow(tmp_path):
  """The `cpu` preset's AlexNet (whitened first layer, mirror averaging, the
  Trainer's loop) for 2 epochs on a 100-image tree. What this cannot check:
  the GPU branch (device.resolve_policy's mixed precision, XLA on a GPU,
  steps_per_execution 32) and the JAX version installed there."""
  tree = write_image_tree(tmp_path / 'cifar', n_train=10, n_test=2)
  result = subprocess.run(
      [sys.executable, '-c', _WITHOUT_TENSORFLOW, '--preset', 'cpu',
       '--model', 'alexnet', '--data', tree, '--epochs', '2',
       '--save-weights', str(tmp_path / 'alexnet.weights.h5')],
      cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
      env=dict(os.environ, KERAS_BACKEND='jax', PYTHONPATH=ROOT))
  output = result.stdout + result.stderr
  assert result.returncode == 0, output[-3000:]
  assert 'backend=jax ' in output and 'train=90 val=10 test=20 ' in output
  policy = 'mixed_bfloat16' if device.cpu_has_native_bfloat16() else 'float32'
  assert f'policy={policy} ' in output  # the preset's native_bfloat16
  assert 'conv1: starts whitening' in output
  assert output.count('phase=full epoch=') == 2 and 'val_mirror=' in output
  assert 'summary model=alexnet best_val_acc=' in output
  assert 'imported: []' in output
  assert os.path.getsize(tmp_path / 'alexnet.weights.h5') > 100e6  # 37M float32
