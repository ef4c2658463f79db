"""The alternating flip (`alternate_flip`): which images are mirrored in which
epoch, in the Trainer's tf.data batches and the benchmarks' NumPy batches."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from components.trainers import augment, checks, data, loop
from pipeline.config import TrainerConfig

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', '..', 'bench'))
import curve_training  # noqa: E402

N = 12  # images in the toy split


def _split():
  """N distinct, left-right asymmetric images, each labelled by its place."""
  images = np.random.default_rng(0).normal(size=(N, 4, 4, 1)).astype('float32')
  return images, np.arange(N)


def _mirrored(batches, images, epochs: int, steps: int):
  """Per epoch, the set of split positions seen mirrored; fails on an image
  that is neither its original nor its exact mirror."""
  seen = [set() for _ in range(epochs)]
  shown = [set() for _ in range(epochs)]
  for index, (x, y) in enumerate(batches):
    for image, label in zip(np.asarray(x), np.asarray(y)):
      position = int(label)
      shown[index // steps].add(position)
      if np.array_equal(image, images[position][:, ::-1]):
        seen[index // steps].add(position)
      else:
        np.testing.assert_array_equal(image, images[position])
  assert all(s == set(range(N)) for s in shown)  # every image, every epoch
  return seen


def test_each_image_is_mirrored_in_every_other_epoch_half_of_them_at_a_time():
  positions = np.arange(45_000)
  first, second = (augment.alternating_flips(positions, e, 42) for e in (0, 1))
  assert set(np.unique(first)) == {0, 1}
  np.testing.assert_array_equal(first + second, np.ones_like(first))
  np.testing.assert_array_equal(augment.alternating_flips(positions, 2, 42), first)
  assert abs(first.mean() - 0.5) < 0.01
  assert abs(first[::2].mean() - 0.5) < 0.01  # not tied to the position's parity
  assert abs((first[1:] == first[:-1]).mean() - 0.5) < 0.01  # nor to neighbours
  other_seed = augment.alternating_flips(positions, 0, 7)
  assert 0.4 < (other_seed != first).mean() < 0.6


@pytest.mark.parametrize('seed', [1, 42, 2**31 - 2])
def test_numpy_and_tensorflow_pick_the_same_images(seed):
  positions = np.arange(50_000, dtype=np.int64)
  for epoch in (0, 3):
    np.testing.assert_array_equal(
        augment.alternating_flips(tf.constant(positions), tf.constant(epoch, tf.int64), seed).numpy(),
        augment.alternating_flips(positions, epoch, seed))


def test_trainer_batches_mirror_each_image_in_alternate_epochs_and_resume_so():
  images, labels = _split()
  examples = tf.data.Dataset.from_tensor_slices((images, labels)).cache()

  def seen(first_epoch, epochs=4):
    batches = data.training_batches(
        examples, num_examples=N, batch_size=4, steps=3, seed=42,
        first_epoch=first_epoch, alternate_flip=True)
    return _mirrored(batches.take(3 * epochs), images, epochs, 3)
  from_start = seen(0)
  for earlier, later in zip(from_start, from_start[1:]):
    assert earlier.isdisjoint(later) and len(earlier | later) == N
  assert from_start[0] == from_start[2] and 0 < len(from_start[0]) < N
  expected = {p for p in range(N) if augment.alternating_flips(p, 0, 42)}
  assert from_start[0] == expected
  assert seen(1, epochs=3) == from_start[1:]  # epoch e is epoch e, however reached
  plain = data.training_batches(examples, num_examples=N, batch_size=4, steps=3,
                                seed=42)
  assert _mirrored(plain.take(3), images, 1, 3) == [set()]  # off: no flips


def test_benchmark_batches_mirror_the_same_images_as_the_trainers():
  images, labels = _split()
  batches = curve_training.numpy_batches(images, labels, batch_size=4, steps=3,
                                         seed=42, alternate_flip=True)
  produced = batches(0)
  numpy_seen = _mirrored([next(produced) for _ in range(6)], images, 2, 3)
  examples = tf.data.Dataset.from_tensor_slices((images, labels))
  tf_seen = _mirrored(data.training_batches(
      examples, num_examples=N, batch_size=4, steps=3, seed=42,
      alternate_flip=True).take(6), images, 2, 3)
  assert numpy_seen == tf_seen


def test_with_the_alternating_flip_the_training_model_flips_nothing_at_random():
  model = tf.keras.Sequential([tf.keras.Input((32, 32, 3)),
                               tf.keras.layers.Flatten()])
  alternating = TrainerConfig(module='m', crop_padding=0, alternate_flip=True)
  assert loop.with_augmentation(model, alternating) is model
  cropped = loop.with_augmentation(model, TrainerConfig(
      module='m', crop_padding=2, alternate_flip=True))
  assert not cropped.get_layer('augment').flip
  random = loop.with_augmentation(model, TrainerConfig(module='m', crop_padding=0))
  assert random.get_layer('augment').flip


def test_the_alternating_flip_without_the_flip_is_refused_with_what_to_set():
  config = TrainerConfig(module='m', horizontal_flip=False, alternate_flip=True)
  assert list(checks.problems('alexnet', config)) == [
      'alexnet.alternate_flip needs alexnet.horizontal_flip=true: set both, or '
      'neither.']
