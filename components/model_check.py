"""Runs a SavedModel on test examples: the pre-push check and the baseline.

Called by `components/selector.py` (the ModelSelector's executor) and by the
tests. TensorFlow is imported only inside the functions; SavedModels are read
through TensorFlow's file systems, so object-store URLs work as local paths.
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np


def read_examples(examples_uri: str, split: str = 'test',
                  label_key: str = 'label') -> tuple[list[bytes], np.ndarray]:
  """(serialized tf.Examples, labels) of one split of an Examples artifact."""
  import tensorflow as tf
  files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, f'Split-{split}',
                                               '*')))
  compression = 'GZIP' if files and files[0].endswith('.gz') else ''
  records = [r.numpy() for r in tf.data.TFRecordDataset(
      files, compression_type=compression)]
  if not records:
    return [], np.zeros([0], np.int64)
  labels = tf.io.parse_example(records, {label_key: tf.io.FixedLenFeature(
      [], tf.int64, default_value=-1)})[label_key]
  return records, labels.numpy()


def predict(saved_model_dir: str, examples: list[bytes],
            batch_size: int = 256) -> np.ndarray:
  """Class probabilities [n, classes] from the model's `serving_default`.

  Raises (any exception) when the model does not load or does not answer
  with a finite probability distribution per example.
  """
  import tensorflow as tf
  signature = tf.saved_model.load(saved_model_dir).signatures['serving_default']
  _, inputs = signature.structured_input_signature
  if len(inputs) != 1:
    raise ValueError(f'serving_default takes {sorted(inputs)}, not one input '
                     'of serialized tf.Examples')
  name = next(iter(inputs))
  out = []
  for start in range(0, len(examples), batch_size):
    result = signature(**{name: tf.constant(examples[start:start + batch_size])})
    if 'probabilities' not in result:
      raise ValueError(f'serving_default answers {sorted(result)}, without '
                       "'probabilities'")
    out.append(result['probabilities'].numpy().astype(np.float64))
  probabilities = np.concatenate(out) if out else np.zeros([0, 0])
  if probabilities.ndim != 2 or len(probabilities) != len(examples):
    raise ValueError(f'serving_default answered probabilities of shape '
                     f'{probabilities.shape} for {len(examples)} examples')
  sums = probabilities.sum(axis=1)
  if not np.all(np.isfinite(probabilities)) or not np.allclose(sums, 1, atol=1e-3):
    raise ValueError('serving_default answered probabilities that are not '
                     f'finite distributions (row sums {sums[:4].round(4)})')
  return probabilities


class CheckFailed(RuntimeError):
  """A staged model did not load or answer; it must not be pushed."""


def short(error: BaseException) -> str:
  """'ValueError: the first 300 characters of its message, on one line'."""
  text = ' '.join(str(error).split())
  return f'{type(error).__name__}: {text[:300]}{"..." if len(text) > 300 else ""}'


def answers(examples: list[bytes]) -> Callable[[str], None]:
  """The pre-push check: the staged model answers `examples`, else CheckFailed."""
  def check(staging: str) -> None:
    try:
      predict(staging, examples)
    except Exception as e:  # pylint: disable=broad-except
      raise CheckFailed(short(e)) from None
  return check


def accuracy(saved_model_dir: str, examples: list[bytes],
             labels: np.ndarray) -> float:
  """Top-1 accuracy, as TFMA's SparseCategoricalAccuracy computes it."""
  probabilities = predict(saved_model_dir, examples)
  return float(np.mean(np.argmax(probabilities, axis=1) == labels))
