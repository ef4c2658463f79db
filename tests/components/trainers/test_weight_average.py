"""The weight average (`ema_momentum`): validated, kept as the best weights,
checkpointed apart from the weights being trained so a resumed run continues.

The average is recomputed here from the weights after every step, by the
rule Keras documents (the first step copies, then m * average + (1 - m) * w),
not read back from the optimizer.
"""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from components.trainers import loop
from pipeline.config import TrainerConfig

MOMENTUM = 0.8


def _model():
  keras.utils.set_random_seed(1)
  return keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3),
                           keras.layers.GlobalAveragePooling2D(),
                           keras.layers.Dense(10, activation='softmax')])


def _data(n=64, batch=16):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(n, 8, 8, 3)).astype('float32')
  y = keras.utils.to_categorical(np.arange(n) % 10, 10)
  train = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).repeat()
  return x, y, train, n // batch


def _config(**kwargs):
  return TrainerConfig(**{**dict(
      epochs=3, batch_size=16, learning_rate=2.0, warmup_epochs=0,
      crop_padding=0, horizontal_flip=False, ema_momentum=MOMENTUM), **kwargs})


class Follow(keras.callbacks.Callback):
  """Recomputes the average after each step; at each epoch's end records what
  the model holds and its accuracy on the validation data."""

  def __init__(self, model, x, y):
    super().__init__()
    self.target, self.x, self.y = model, x, y
    self.average, self.trained, self.epochs = None, None, []

  def on_train_batch_end(self, batch, logs=None):
    self.trained = [v.numpy() for v in self.target.trainable_variables]
    self.average = self.trained if self.average is None else [
        MOMENTUM * a + (1 - MOMENTUM) * w
        for a, w in zip(self.average, self.trained)]

  def on_epoch_end(self, epoch, logs=None):
    held = [v.numpy() for v in self.target.trainable_variables]
    hits = np.argmax(self.target(self.x), 1) == np.argmax(self.y, 1)
    assert not all(np.allclose(a, w, atol=1e-3)
                   for a, w in zip(self.average, self.trained))  # they differ
    self.epochs.append((held, [a.copy() for a in self.average],
                        float(logs['val_accuracy']), float(np.mean(hits))))


def test_the_average_is_validated_kept_as_best_and_ends_the_run(tmp_path):
  x, y, train, steps = _data()
  model = _model()
  follow = Follow(model, x, y)
  log = loop.train(model, _config(), lambda epoch: train, steps, (x, y),
                   frozen_layer=None, checkpoint_dir=str(tmp_path / 'ckpt'),
                   run_dir=str(tmp_path / 'run'), callbacks=[follow])
  for held, average, val_accuracy, accuracy in follow.epochs:
    for h, a in zip(held, average):
      np.testing.assert_allclose(h, a, atol=1e-5)  # the average, not the last step
    assert val_accuracy == pytest.approx(accuracy)  # validated: the average
  best = int(np.argmax([r['val_accuracy'] for r in log.rows]))
  for final, average in zip(model.trainable_variables, follow.epochs[best][1]):
    np.testing.assert_allclose(final.numpy(), average, atol=1e-5)


def test_a_killed_run_with_an_average_resumes_to_the_same_weights(tmp_path):
  x, y, train, steps = _data()
  whole = _model()
  loop.train(whole, _config(), lambda epoch: train, steps, (x, y),
             frozen_layer=None, checkpoint_dir=str(tmp_path / 'whole'),
             run_dir=str(tmp_path / 'run0'), tensorboard=False)

  class Kill(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
      if epoch == 1:
        raise KeyboardInterrupt('killed after epoch 2')
  with pytest.raises(KeyboardInterrupt):
    loop.train(_model(), _config(), lambda epoch: train, steps, (x, y),
               frozen_layer=None, checkpoint_dir=str(tmp_path / 'ckpt'),
               run_dir=str(tmp_path / 'run1'), callbacks=[Kill()],
               tensorboard=False)
  resumed = _model()
  log = loop.train(resumed, _config(), lambda epoch: train, steps, (x, y),
                   frozen_layer=None, checkpoint_dir=str(tmp_path / 'ckpt'),
                   run_dir=str(tmp_path / 'run2'), tensorboard=False)
  assert [r['epoch'] for r in log.rows] == [1, 2, 3]
  with open(os.path.join(tmp_path, 'whole', 'history.json')) as f:
    whole_rows = json.load(f)
  assert [r['val_accuracy'] for r in log.rows] == pytest.approx(
      [r['val_accuracy'] for r in whole_rows])
  for a, b in zip(whole.get_weights(), resumed.get_weights()):
    np.testing.assert_allclose(a, b, atol=1e-5)
