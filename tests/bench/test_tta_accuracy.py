"""bench/tta_accuracy.py: the shifted views it averages."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', 'bench'))
import tta_accuracy  # noqa: E402


def test_shift_moves_the_image_and_reflects_the_border():
  x = np.arange(2 * 5 * 5 * 3, dtype=np.float32).reshape(2, 5, 5, 3)
  down_right = tta_accuracy.shifted(x, 1, 1)
  assert down_right.shape == x.shape
  np.testing.assert_array_equal(down_right[:, 1:, 1:], x[:, :-1, :-1])
  np.testing.assert_array_equal(down_right[:, 0, 1:], x[:, 1, :-1])  # reflected row 1
  up_left = tta_accuracy.shifted(x, -2, -2)
  np.testing.assert_array_equal(up_left[:, :-2, :-2], x[:, 2:, 2:])
  np.testing.assert_array_equal(tta_accuracy.shifted(x, 0, 0), x)


def test_views_are_weighted_half_mirror_pair_quarter_each_shift():
  class Probe:  # probabilities = the mean pixel of each image, as 2 classes
    def __call__(self, images, training=False):
      m = np.asarray(images).mean(axis=(1, 2, 3))[:, None]
      return np.concatenate([m, 1 - m], 1).astype('float32')
  x = np.random.default_rng(0).random((3, 6, 6, 1), dtype=np.float32)
  expected = 0.5 * Probe()(x) + 0.25 * (Probe()(tta_accuracy.shifted(x, -1, -1)) +
                                        Probe()(tta_accuracy.shifted(x, 1, 1)))
  views = tta_accuracy.probabilities(Probe(), x, (0, 1))
  np.testing.assert_allclose(views[1], expected, rtol=1e-6)
  np.testing.assert_allclose(views[0], Probe()(x), rtol=1e-6)


def test_a_folder_that_is_no_exported_model_is_refused_before_any_work(tmp_path, capsys):
  cache = tmp_path / 'cifar.npz'
  cache.write_bytes(b'')  # never read: the model folder is checked first
  (tmp_path / 'run').mkdir()
  with pytest.raises(SystemExit) as stop:
    tta_accuracy.main(['--saved-model', str(tmp_path / 'run'), '--cache', str(cache)])
  assert stop.value.code == 2
  assert (f'--saved-model: No SavedModel in {tmp_path / "run"}: expected '
          'saved_model.pb there') in capsys.readouterr().err
