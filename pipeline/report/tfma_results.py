"""Reads one Evaluator's TFMA output for the report: the confusion matrix and
the thresholds with their outcome (the metrics themselves come from
`components.evaluation_metrics`, which the ModelSelector reads too).

Called by `pipeline/report/facts.py` with the URI of a ModelEvaluation
artifact found through ML Metadata. TFMA is imported inside the functions.
"""

from __future__ import annotations

import json
import os


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
