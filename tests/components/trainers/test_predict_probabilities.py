"""components/trainers/predict.py: the probabilities the serving signature
returns and the accuracy bench counts (`bench/curve_training.accuracy`), with
and without the mirror. (Named apart from tests/pipeline/test_predict.py, the
CLI's `predict`: pytest imports test files by their base name.)"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from components.trainers import predict

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', '..', 'bench'))
import curve_training  # noqa: E402


def _model():
  """A network that tells an image from its mirror (a dense layer on pixels)."""
  import keras
  keras.utils.set_random_seed(5)
  inputs = keras.Input((8, 8, 3))
  x = keras.layers.Flatten()(inputs)
  outputs = keras.layers.Dense(10, activation='softmax')(x)
  return keras.Model(inputs, outputs)


@pytest.mark.parametrize('mirror', [False, True])
def test_the_probabilities_are_the_network_s_or_its_mean_with_the_mirror(mirror):
  x = np.random.default_rng(1).random((6, 8, 8, 3), np.float32)
  model = _model()
  plain = np.asarray(model(x, training=False))
  flipped = np.asarray(model(x[:, :, ::-1], training=False))  # left-right
  assert not np.allclose(plain, flipped, atol=1e-3)
  out = np.asarray(predict.probabilities(model, x, mirror))
  assert out.dtype == np.float32
  np.testing.assert_allclose(out, (plain + flipped) / 2 if mirror else plain,
                             atol=1e-6)


def test_the_bench_counts_hits_of_the_same_probabilities():
  x = np.random.default_rng(2).random((300, 8, 8, 3), np.float32)
  model = _model()
  mean = (np.asarray(model(x, training=False))
          + np.asarray(model(x[:, :, ::-1], training=False))) / 2
  labels = np.eye(10, dtype=np.float32)[mean.argmax(axis=1)]
  plain_hits = np.asarray(model(x, training=False)).argmax(axis=1) == mean.argmax(axis=1)
  assert plain_hits.mean() < 1  # the labels tell the two answers apart
  assert curve_training.accuracy(model, x, labels, batch_size=128, mirror=True) == 1.0
  assert curve_training.accuracy(model, x, labels, batch_size=128) == pytest.approx(
      plain_hits.mean())
