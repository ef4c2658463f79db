"""The serving directory: versions, the atomic push, and running a SavedModel.

Called by `components/selector.py` (the ModelSelector's executor). Layout is
TF Serving's: `<serving_dir>/<model_name>/<version>/` with integer versions; a
server loads only those. Everything else in `<model_name>/` is hidden from it
and ours: `.push.lock` (one push at a time, across pipeline roots),
`.last_version` (the highest version ever pushed, so that versions only
increase even if someone deletes the newest) and `.staging-*` (a copy being
pushed; one left by a killed push is removed by the next).

TensorFlow is imported only by the functions that run a model.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import uuid
from typing import Callable, Iterator

import numpy as np

LOCK_FILE, LAST_VERSION_FILE, STAGING_PREFIX = '.push.lock', '.last_version', '.staging-'


def versions(model_dir: str) -> list[int]:
  """The versions a server would load, ascending."""
  if not os.path.isdir(model_dir):
    return []
  return sorted(int(d) for d in os.listdir(model_dir)
                if d.isdigit() and os.path.isdir(os.path.join(model_dir, d)))


def next_version(model_dir: str) -> int:
  last = 0
  try:
    with open(os.path.join(model_dir, LAST_VERSION_FILE)) as f:
      last = int(f.read().strip() or 0)
  except (OSError, ValueError):
    pass
  return max(versions(model_dir) + [last]) + 1


@contextlib.contextmanager
def locked(model_dir: str) -> Iterator[None]:
  """Holds `<model_dir>/.push.lock` (blocking): one push at a time."""
  os.makedirs(model_dir, exist_ok=True)
  with open(os.path.join(model_dir, LOCK_FILE), 'w') as handle:
    fcntl.flock(handle, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(handle, fcntl.LOCK_UN)


def _fsync_tree(root: str) -> None:
  for folder, _, files in os.walk(root):
    for name in files:
      with open(os.path.join(folder, name), 'rb') as f:
        os.fsync(f.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: str) -> None:
  handle = os.open(folder, os.O_RDONLY)
  try:
    os.fsync(handle)
  finally:
    os.close(handle)


def push(saved_model_dir: str, model_dir: str,
         check: Callable[[str], None] | None = None) -> str:
  """Copies a SavedModel to `<model_dir>/<next version>/`; call under `locked`.

  The copy goes to a hidden staging folder beside the versions, is flushed to
  disk, passes `check(staging)` (which raises to refuse it), and is renamed
  into place: a server never sees a partial version, and a failure or a
  crash at any point leaves the served versions as they were.
  """
  os.makedirs(model_dir, exist_ok=True)
  for name in os.listdir(model_dir):  # left by a push that was killed
    if name.startswith(STAGING_PREFIX):
      shutil.rmtree(os.path.join(model_dir, name), ignore_errors=True)
  staging = os.path.join(model_dir, f'{STAGING_PREFIX}{uuid.uuid4().hex}')
  try:
    shutil.copytree(saved_model_dir, staging)
    _fsync_tree(staging)
    if check:
      check(staging)
    version = next_version(model_dir)
    destination = os.path.join(model_dir, str(version))
    os.rename(staging, destination)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  with open(os.path.join(model_dir, LAST_VERSION_FILE), 'w') as f:
    f.write(f'{version}\n')
  _fsync_dir(model_dir)
  return destination


def same_model(a: str, b: str) -> bool:
  """True if two SavedModel folders hold the same files with the same bytes."""
  def listing(root: str) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, files in os.walk(root) for f in files)
  if not (os.path.isdir(a) and os.path.isdir(b)) or listing(a) != listing(b):
    return False
  for rel in listing(a):
    x, y = os.path.join(a, rel), os.path.join(b, rel)
    if os.path.getsize(x) != os.path.getsize(y):
      return False
    with open(x, 'rb') as fx, open(y, 'rb') as fy:
      while True:
        chunk = fx.read(1 << 20)
        if chunk != fy.read(1 << 20):
          return False
        if not chunk:
          break
  return True


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
