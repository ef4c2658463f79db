"""Reads one Evaluator's TFMA output: metrics, per-class results, the confusion
matrix and the thresholds with their outcome.

Called by `pipeline/report/facts.py` with the URI of a ModelEvaluation
artifact found through ML Metadata. TFMA is imported inside the functions.
"""

from __future__ import annotations

import json
import math
import os


def _value(entry) -> float | None:
  """A metric value as a float; None for NaN (e.g. precision of a class the
  model never predicts: 0/0)."""
  kind = entry.value.WhichOneof('type')
  if kind != 'double_value':
    return None
  value = float(entry.value.double_value.value)
  return None if math.isnan(value) else value


def metrics(uri: str) -> dict:
  """{'overall': {name: value}, 'per_class': {class_id: {name: value}}}."""
  import tensorflow_model_analysis as tfma
  overall: dict = {}
  per_class: dict = {}
  for sliced in tfma.load_metrics(uri):
    if sliced.slice_key.single_slice_keys:
      continue  # only the overall slice is configured
    for entry in sliced.metric_keys_and_values:
      key = entry.key
      if key.HasField('sub_key') and key.sub_key.HasField('class_id'):
        per_class.setdefault(int(key.sub_key.class_id.value), {})[
            key.name] = _value(entry)
      elif not key.HasField('sub_key'):
        overall[key.name] = _value(entry)
  return {'overall': overall, 'per_class': per_class}


def confusion_matrix(uri: str, num_classes: int) -> dict:
  """{'matrix': [[count]] (row: true class, column: predicted), 'unpredicted':
  count of examples with no prediction above the threshold}; empty matrix
  when the Evaluator wrote no MultiClassConfusionMatrixPlot."""
  import tensorflow_model_analysis as tfma
  matrix = [[0.0] * num_classes for _ in range(num_classes)]
  unpredicted, found = 0.0, False
  for sliced in tfma.load_plots(uri):
    if sliced.slice_key.single_slice_keys:
      continue
    for entry in sliced.plot_keys_and_values:
      if not entry.value.HasField('multi_class_confusion_matrix_at_thresholds'):
        continue
      matrices = entry.value.multi_class_confusion_matrix_at_thresholds.matrices
      if not matrices:
        continue
      found = True
      for cell in matrices[0].entries:
        actual, predicted = cell.actual_class_id, cell.predicted_class_id
        if not 0 <= actual < num_classes:
          continue
        if 0 <= predicted < num_classes:
          matrix[actual][predicted] += cell.num_weighted_examples
        else:
          unpredicted += cell.num_weighted_examples
  return {'matrix': matrix if found else [], 'unpredicted': unpredicted}


def _metric_name(metric: dict) -> str:
  config = json.loads(metric.get('config') or '{}')
  return config.get('name') or metric.get('className', '?')


def thresholds(uri: str) -> list[dict]:
  """Each configured value threshold and whether the model passed it:
  [{'metric', 'lower', 'upper', 'passed', 'message'}]."""
  import tensorflow_model_analysis as tfma
  path = os.path.join(uri, 'eval_config.json')
  if not os.path.exists(path):
    return []
  with open(path) as f:
    config = json.load(f).get('evalConfig', {})
  failures = {}
  try:
    validation = tfma.load_validation_result(uri)
  except Exception:  # pylint: disable=broad-except
    validation = None  # no validations file: thresholds were not checked
  if validation is not None:
    for per_slice in validation.metric_validations_per_slice:
      for failure in per_slice.failures:
        failures[failure.metric_key.name] = failure.message
  found = []
  for spec in config.get('metricsSpecs', []):
    for metric in spec.get('metrics', []):
      bound = metric.get('threshold', {}).get('valueThreshold')
      if bound is None:
        continue
      name = _metric_name(metric)
      found.append({
          'metric': name,
          'lower': bound.get('lowerBound'), 'upper': bound.get('upperBound'),
          'passed': None if validation is None else name not in failures,
          'message': failures.get(name, '')})
  return found
