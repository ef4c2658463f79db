"""What `bench/accuracy_curve.py` hands the Trainer's own loop (`loop.train`).

Called by `bench/accuracy_curve.py` only. The training itself is
`components.trainers.loop.train`, the loop TFX's Trainer runs (phases,
schedule, per-epoch seeds, best-on-validation weights, checkpoints); this
module supplies what differs on a machine without TensorFlow: batches from
numpy arrays instead of Transform's examples, and a callback that records
test accuracy for the record, prints one line an epoch and keeps a deadline.
Imports no TensorFlow, so it runs under `KERAS_BACKEND=jax` or `torch`.
"""

from __future__ import annotations

import time

import keras
import numpy as np

from components.trainers import augment, predict, schedule


class DeadlineReached(Exception):
  """The next epoch would end after the deadline; the rows so far stand."""


def numpy_batches(x: np.ndarray, y: np.ndarray, *, batch_size: int, steps: int,
                  seed: int, alternate_flip: bool = False):
  """`batches(first_epoch)` for `loop.train`: epoch e's order depends only on
  (seed, e), as the Trainer's does, so a resumed run continues it; with
  `alternate_flip`, the images `augment.alternating_flips` picks for epoch e
  are mirrored, the same ones as in the Trainer's batches."""
  def batches(first_epoch: int):
    epoch = first_epoch
    while True:
      order = np.random.default_rng([seed, epoch]).permutation(len(x))
      order = np.resize(order, steps * batch_size)  # wraps when steps need more
      for step in range(steps):
        rows = order[step * batch_size:(step + 1) * batch_size]
        images = x[rows]
        if alternate_flip:
          flips = augment.alternating_flips(rows, epoch, seed) > 0
          images = np.where(flips[:, None, None, None], images[:, :, ::-1], images)
        yield images, y[rows]
      epoch += 1
  return batches


def channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Per-channel mean and standard deviation of uint8 images in [0, 1]: the
  statistics Transform's analyzers compute over train (components/transform.py;
  tests/components/test_transform.py checks the two agree)."""
  raw = images.astype('float64') / 255.0  # float32 sums drift by 1e-3 at 45,000
  return (raw.mean(axis=(0, 1, 2)).astype('float32'),
          raw.std(axis=(0, 1, 2)).astype('float32'))


def normalise(images: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
  """uint8 images as float32 in [0, 1], centred and scaled per channel by
  `channel_stats`, as Transform's graph does."""
  return ((images.astype('float32') / 255.0 - mean) / std).astype('float32')


def accuracy(model, x: np.ndarray, y: np.ndarray, batch_size: int = 500, *,
             mirror: bool = False) -> float:
  """Top-1 accuracy of `model` (inference mode) on one-hot `y`; `mirror`
  averages the probabilities of each image and its left-right mirror
  (test-time augmentation)."""
  hits = 0
  for start in range(0, len(x), batch_size):
    out = keras.ops.convert_to_numpy(
        predict.probabilities(model, x[start:start + batch_size], mirror))
    hits += int(np.sum(np.argmax(out, 1) == np.argmax(y[start:start + batch_size], 1)))
  return hits / len(x)


def trained_weights(fit_model, target):
  """With the optimizer's weight average swapped into `target` (loop.ema_swap),
  a copy of `target` holding the weights being trained; None without EMA."""
  optimizer = schedule.trained_by(fit_model.optimizer)
  if not getattr(optimizer, 'use_ema', False):
    return None
  copy = keras.models.clone_model(target)
  copy.set_weights(target.get_weights())  # BN statistics: the run's own
  for mine, trained in zip(copy.trainable_variables,
                           optimizer._model_variables_moving_average):
    mine.assign(trained)
  return copy


class EpochRecord(keras.callbacks.Callback):
  """One row and one printed line an epoch: validation accuracy (as fit
  logged it), test accuracy (for the record), images/s and the compute-bound
  ratio; raises DeadlineReached before an epoch that would end too late.

  Side by side in the same run, on validation: `val_mirror` (the image and
  its mirror averaged) and, with a weight average (`ema_momentum`), the
  weights being trained without it (`val_trained`, `val_trained_mirror`).
  """

  def __init__(self, target, validation, test, *, phases: list[str],
               images_per_epoch: int, bound_s: float, deadline_s: float):
    super().__init__()
    self.target, self.test, self.phases = target, test, phases  # one an epoch
    self.validation = validation
    self.images_per_epoch, self.bound_s = images_per_epoch, bound_s
    self.deadline_s, self.rows = deadline_s, []
    self.t0 = self.begin = time.time()
    self.epoch_s = 0.0

  def on_epoch_begin(self, epoch, logs=None):
    elapsed = time.time() - self.t0
    if self.deadline_s and self.rows and elapsed + self.epoch_s > self.deadline_s:
      raise DeadlineReached(f'deadline: stopped before epoch {len(self.rows) + 1}')
    self.begin = time.time()

  def on_epoch_end(self, epoch, logs=None):
    logs = logs or {}
    train_s = time.time() - self.begin
    test = accuracy(self.target, *self.test)
    side = {'val_mirror': accuracy(self.target, *self.validation, mirror=True)}
    trained = trained_weights(self.model, self.target)
    if trained is not None:
      side['val_trained'] = accuracy(trained, *self.validation)
      side['val_trained_mirror'] = accuracy(trained, *self.validation, mirror=True)
    self.epoch_s = time.time() - self.begin
    self.rows.append(dict(epoch=len(self.rows) + 1, wall_s=time.time() - self.t0,
                          val_acc=float(logs.get('val_accuracy', 0.0)),
                          test_acc=test, **side))
    ratio = f'bound_ratio={train_s / self.bound_s:.1f} ' if self.bound_s else ''
    print(f'phase={self.phases[len(self.rows) - 1]} epoch={len(self.rows)} '
          f'wall_s={self.rows[-1]["wall_s"]:.0f} epoch_s={self.epoch_s:.1f} '
          f'train_s={train_s:.1f} '
          f'images_per_s={self.images_per_epoch / train_s:.0f} {ratio}'
          f'train_acc={float(logs.get("accuracy", 0.0)):.4f} '
          f'val_acc={self.rows[-1]["val_acc"]:.4f} test_acc={test:.4f} '
          + ' '.join(f'{k}={v:.4f}' for k, v in side.items()), flush=True)
