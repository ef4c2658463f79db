"""The Trainer's input pipeline over Transform's output examples.

Called by `components.trainers.base` and by `bench/train_throughput.py`.
Reads the transformed (decoded, normalised) examples once, caches the tensors
in memory, then shuffles, batches (dropping the remainder for training) and
prefetches.
"""

from __future__ import annotations

import os

import tensorflow as tf

from components.cifar10 import IMAGE_KEY, LABEL_KEY
from components.errors import UserError

PARSE_BATCH = 512  # examples parsed per vectorised parse_example call


class NotEnoughData(UserError):
  """Fewer training examples than one batch holds."""


def list_files(file_pattern: str | list[str]) -> list[str]:
  patterns = [file_pattern] if isinstance(file_pattern, str) else file_pattern
  gfile = tf.io.gfile
  files = sorted(f for p in patterns for f in gfile.glob(
      os.path.join(p, '*') if gfile.isdir(p) else p))
  if not files:
    raise FileNotFoundError(f'No transformed examples match {patterns}.')
  return files


def load_split(file_pattern, feature_spec: dict, num_classes: int
               ) -> tf.data.Dataset:
  """Unbatched (image [32,32,3] float32, one-hot label) pairs, cached in memory."""
  spec = {k: v for k, v in feature_spec.items() if k in (IMAGE_KEY, LABEL_KEY)}

  def parse(serialized):
    features = tf.io.parse_example(serialized, spec)
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


def training_batches(examples: tf.data.Dataset, *, num_examples: int,
                     batch_size: int, seed: int) -> tf.data.Dataset:
  """Endless shuffled batches of exactly `batch_size` examples.

  Each pass reshuffles. Augmentation is not here: it runs on the batch inside
  the train step (`augment.BatchAugment`), on the accelerator when there is one.
  Raises NotEnoughData when not one batch can be made.
  """
  if batch_size > num_examples:
    raise NotEnoughData(
        f'batch_size {batch_size} is larger than the {num_examples} training '
        'examples: lower the model\'s batch_size (--set MODEL.batch_size=N) or '
        'use more data (data.train_per_class).')
  return (examples.shuffle(num_examples, seed=seed,
                           reshuffle_each_iteration=True)
          .batch(batch_size, drop_remainder=True).repeat()
          .prefetch(tf.data.AUTOTUNE))


def evaluation_batches(examples: tf.data.Dataset, batch_size: int
                       ) -> tf.data.Dataset:
  """Every example once, in order, unaugmented."""
  return examples.batch(batch_size).prefetch(tf.data.AUTOTUNE)
