"""The Trainer's input pipeline: raw examples through Transform's graph.

Called by `components.trainers.base` and by `bench/train_throughput.py`.
Reads ExampleGen's examples once, applies the transform graph (decode,
normalise: the same graph the exported model serves with), caches the tensors
in memory, then shuffles per epoch, batches (dropping the remainder for
training, padding it with weight-0 examples for validation) and prefetches.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from components.cifar10 import IMAGE_KEY, LABEL_KEY
from components.errors import UserError
from components.trainers import augment

PARSE_BATCH = 512  # examples parsed per vectorised parse_example call


class NotEnoughData(UserError):
  """Fewer training examples than one batch holds."""


def list_files(file_pattern: str | list[str]) -> list[str]:
  patterns = [file_pattern] if isinstance(file_pattern, str) else file_pattern
  gfile = tf.io.gfile
  files = sorted(f for p in patterns for f in gfile.glob(
      os.path.join(p, '*') if gfile.isdir(p) else p))
  if not files:
    raise FileNotFoundError(f'No examples match {patterns}.')
  return files


def load_split(file_pattern, tft_output, num_classes: int) -> tf.data.Dataset:
  """Unbatched (image [32,32,3] float32, one-hot label) pairs of the raw
  examples at `file_pattern` after `tft_output`'s graph, cached in memory."""
  raw_spec = tft_output.raw_feature_spec()
  spec = {k: raw_spec[k] for k in (IMAGE_KEY, LABEL_KEY)}
  transform = tft_output.transform_features_layer()

  def parse(serialized):
    features = transform(tf.io.parse_example(serialized, spec))
    label = tf.reshape(features[LABEL_KEY], [-1])
    return features[IMAGE_KEY], tf.one_hot(label, num_classes)

  dataset = tf.data.TFRecordDataset(list_files(file_pattern),
                                    compression_type='GZIP',
                                    num_parallel_reads=tf.data.AUTOTUNE)
  return (dataset.batch(PARSE_BATCH)
          .map(parse, num_parallel_calls=tf.data.AUTOTUNE)
          .unbatch().cache())


def count(dataset: tf.data.Dataset) -> int:
  """Counts elements; on a cached dataset this pass also fills the cache."""
  return int(dataset.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))


def images(examples: tf.data.Dataset, limit: int) -> np.ndarray:
  """The first `limit` images of an unbatched (image, label) split, stacked."""
  batches = examples.take(limit).map(lambda x, _: x).batch(PARSE_BATCH)
  return np.concatenate(list(batches.as_numpy_iterator()))


def epoch_seed(seed: int, epoch: int) -> int:
  """The seed of one epoch's data order and random state (a 31-bit int)."""
  return (seed * 1_000_003 + epoch * 7_919 + 1) % (2**31 - 1)


def training_batches(examples: tf.data.Dataset, *, num_examples: int,
                     batch_size: int, steps: int, seed: int,
                     first_epoch: int = 0,
                     alternate_flip: bool = False) -> tf.data.Dataset:
  """Endless batches of exactly `batch_size` examples, `steps` per epoch.

  Epoch e's batches depend only on (seed, e): its own shuffle of the split
  (a further pass reshuffles when `steps` batches need more than one), so a
  run resumed at `first_epoch` continues the data order instead of
  replaying epoch 0's. Augmentation is not here: it runs on the batch inside
  the train step (`augment.BatchAugment`), on the accelerator when there is
  one, reseeded per epoch by `loop.EpochSeeds`; except, with
  `alternate_flip`, the mirroring of the images that
  `augment.alternating_flips` picks for the epoch by their place in the
  split. Raises NotEnoughData when not one batch can be made.
  """
  if batch_size > num_examples:
    raise NotEnoughData(
        f'batch_size {batch_size} is larger than the {num_examples} training '
        'examples: lower the model\'s batch_size (--set MODEL.batch_size=N) or '
        'use more data (data.train_per_class).')
  def epoch(index):
    split = examples.enumerate() if alternate_flip else examples
    shuffled = split.shuffle(num_examples, seed=epoch_seed(seed, 0) + index,
                             reshuffle_each_iteration=True)
    batched = shuffled.repeat().batch(batch_size, drop_remainder=True).take(steps)
    if not alternate_flip:
      return batched

    def mirror(positions, pair):
      images, labels = pair
      flips = augment.alternating_flips(positions, index, seed) > 0
      return (tf.where(flips[:, None, None, None], tf.reverse(images, [2]),
                       images), labels)
    return batched.map(mirror)

  return (tf.data.Dataset.range(first_epoch, 2**62).flat_map(epoch)
          .prefetch(tf.data.AUTOTUNE))


def evaluation_batches(examples: tf.data.Dataset, batch_size: int, *,
                       num_examples: int) -> tf.data.Dataset:
  """Every example once, in order, unaugmented, as (image, label, weight).

  The last batch is padded to `batch_size` with weight-0 copies of an
  example, so that with a batch that is a multiple of the replica count
  every replica gets an even, non-empty share; the weights keep the metrics
  those of the real examples.
  """
  padding = -num_examples % batch_size
  # A known cardinality: with an unknown one, MirroredStrategy's evaluation
  # counted examples wrongly (2 replicas, 20 images: val_accuracy and
  # val_loss halved), where the same data with it gave the right values.
  weighted = examples.apply(tf.data.experimental.assert_cardinality(
      num_examples)).map(lambda x, y: (x, y, tf.constant(1.0)))
  pads = weighted.take(1).map(lambda x, y, w: (x, y, tf.constant(0.0)))
  return (weighted.concatenate(pads.repeat(padding))
          .batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))
