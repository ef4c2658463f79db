"""A Trainer stops at once, with one message, on a diverging loss or on a
batch larger than its data.

Run by pytest on a tiny Keras model (no pipeline): `loop.train` with
inputs that make the loss NaN (NaN pixels) or infinite (a huge learning rate),
and `data.training_batches` with fewer examples than one batch.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from components.errors import UserError
from components.trainers import data, loop
from tests.components.trainers.test_recipe import _config, _images, _tiny_model

pytestmark = pytest.mark.timeout(120)


def _train(tmp_path, x, config, batches_seen):
  y = tf.one_hot(np.arange(len(x)) % 10, 10)
  train = tf.data.Dataset.from_tensor_slices((x, y)).batch(16).repeat()
  val = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)

  class Count(loop.keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
      batches_seen.append(batch)
  loop.train(_tiny_model(), config, lambda first_epoch: train, 4, val,
             frozen_layer=None, checkpoint_dir=str(tmp_path / 'ckpt'),
             run_dir=str(tmp_path / 'run'), callbacks=[Count()],
             tensorboard=False)


def test_a_nan_loss_stops_the_trainer_at_the_first_step(tmp_path):
  x = _images(64)
  x[5, 3, 3, 0] = np.nan  # one bad pixel in the first batch
  seen = []
  with pytest.raises(loop.LossDiverged) as caught:
    _train(tmp_path, x, _config(epochs=50, module='m.alexnet'), seen)
  assert isinstance(caught.value, UserError)
  assert caught.value.message == (
      'm.alexnet: the training loss became nan in phase full, epoch 1, step 1: '
      'lower learning_rate (now 0.5) or raise warmup_epochs (now 0), and check '
      'the data.')
  assert len(seen) <= 1  # not one more batch, let alone 49 more epochs
  assert not os.path.exists(tmp_path / 'ckpt' / 'full.done.weights.h5')


def test_a_loss_driven_to_infinity_stops_the_trainer(tmp_path):
  seen = []
  x = _images(64) * 1e6
  with pytest.raises(loop.LossDiverged, match=r'loss became (nan|inf) in phase '
                     r'full, epoch \d+, step \d+'):
    _train(tmp_path, x, _config(epochs=50, learning_rate=1e30), seen)
  assert len(seen) < 50 * 4


def test_a_batch_larger_than_the_data_is_named():
  examples = tf.data.Dataset.from_tensor_slices(np.zeros((5, 2), np.float32))
  with pytest.raises(data.NotEnoughData) as caught:
    data.training_batches(examples, num_examples=5, batch_size=8, steps=1,
                          seed=0)
  assert caught.value.message.startswith(
      'batch_size 8 is larger than the 5 training examples: lower')
  batches = data.training_batches(examples, num_examples=5, batch_size=5,
                                 steps=1, seed=0)
  assert next(iter(batches)).shape == (5, 2)
