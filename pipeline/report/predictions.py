"""Runs each candidate's SavedModel over a sample of the test split: latency
on this machine and the test images it gets wrong.

Called by `pipeline/report/__init__.py` (`build`) with the ExampleGen test
split folder and each model's serving SavedModel, both found through ML
Metadata by `pipeline/report/facts.py`. TensorFlow is imported lazily.
"""

from __future__ import annotations

import gc
import glob
import os
import time

BATCH = 64  # examples per call of the serving signature


def sample_test_examples(split_dir: str, limit: int) -> list[dict]:
  """Up to `limit` test examples spread evenly over the split (deterministic):
  [{'serialized', 'image' (encoded bytes), 'label', 'id'}]."""
  import tensorflow as tf
  files = sorted(glob.glob(os.path.join(split_dir, '*')))
  if not files or limit <= 0:
    return []
  compression = 'GZIP' if files[0].endswith('.gz') else ''
  records = [r.numpy() for r in tf.data.TFRecordDataset(
      files, compression_type=compression)]
  if len(records) > limit:
    step = len(records) / limit
    records = [records[int(i * step)] for i in range(limit)]
  examples = []
  for serialized in records:
    features = tf.train.Example.FromString(serialized).features.feature
    examples.append({
        'serialized': serialized,
        'image': features['image'].bytes_list.value[0],
        'label': int(features['label'].int64_list.value[0]),
        'id': (features['id'].bytes_list.value[0].decode('utf-8', 'replace')
               if 'id' in features else '')})
  return examples


def run_model(saved_model_dir: str, examples: list[dict]) -> dict:
  """Loads the SavedModel and classifies `examples` in batches of BATCH.

  Returns {'load_seconds', 'ms_per_image' (mean over every batch after a
  warm-up call, which traces the function), 'class_ids', 'confidences'}.
  """
  import numpy as np
  import tensorflow as tf
  start = time.perf_counter()
  model = tf.saved_model.load(saved_model_dir)
  serve = model.signatures['serving_default']
  load_seconds = time.perf_counter() - start
  serialized = [e['serialized'] for e in examples]
  serve(examples=tf.constant(serialized[:BATCH]))  # warm-up
  class_ids, confidences = [], []
  start = time.perf_counter()
  for offset in range(0, len(serialized), BATCH):
    out = serve(examples=tf.constant(serialized[offset:offset + BATCH]))
    probabilities = out['probabilities'].numpy()
    class_ids += [int(i) for i in np.argmax(probabilities, axis=1)]
    confidences += [float(p) for p in np.max(probabilities, axis=1)]
  seconds = time.perf_counter() - start
  del serve, model
  gc.collect()
  return {'load_seconds': load_seconds,
          'ms_per_image': 1000.0 * seconds / max(len(serialized), 1),
          'class_ids': class_ids, 'confidences': confidences}


def mistakes(examples: list[dict], result: dict, limit: int) -> list[dict]:
  """Up to `limit` sampled examples the model gets wrong, taken in turn from
  each true class so that one confused class does not fill the grid."""
  by_class: dict = {}
  for example, predicted, confidence in zip(
      examples, result['class_ids'], result['confidences']):
    if predicted != example['label']:
      by_class.setdefault(example['label'], []).append({
          'image': example['image'], 'id': example['id'],
          'label': example['label'], 'predicted': predicted,
          'confidence': confidence})
  chosen: list = []
  queues = [by_class[label] for label in sorted(by_class)]
  while len(chosen) < limit and any(queues):
    for queue in queues:
      if queue and len(chosen) < limit:
        chosen.append(queue.pop(0))
  return chosen


def evaluate(models: list[dict], split_dir: str | None, limit: int,
             grid: int = 10) -> dict:
  """Per model name: latency, sample accuracy and the wrong-image grid.

  {'sample_size': n, 'models': {name: {'ms_per_image', 'load_seconds',
  'sample_accuracy', 'mistakes': [...]}}, 'error': None or why not run}
  """
  if not any(model.get('saved_model') for model in models):
    return {'sample_size': 0, 'models': {},
            'error': 'no trained models in this run'}
  if not split_dir or not os.path.isdir(split_dir):
    return {'sample_size': 0, 'models': {},
            'error': 'the ExampleGen test split is not on disk'}
  examples = sample_test_examples(split_dir, limit)
  found: dict = {'sample_size': len(examples), 'models': {}, 'error': None}
  if not examples:
    found['error'] = 'no test examples were sampled (--examples 0?)'
    return found
  for model in models:
    if not model.get('saved_model'):
      continue
    result = run_model(model['saved_model'], examples)
    correct = sum(p == e['label'] for p, e in zip(result['class_ids'], examples))
    found['models'][model['name']] = {
        'ms_per_image': result['ms_per_image'],
        'load_seconds': result['load_seconds'],
        'sample_accuracy': correct / len(examples),
        'mistakes': mistakes(examples, result, grid)}
  return found
