"""TFMA metrics of a 10-way classifier, computed natively from one pass.

Called by TFMA inside every Evaluator, which imports this module by the name
that `pipeline.evaluation.eval_config` gives it. TFMA's stock metrics for the
same figures cost most of the Evaluator's time beyond inference: Keras
accuracy and loss run through tf_keras (AutoGraph converts it, seconds per
run), and per-class precision and recall binarised per class fill ten
calibration histograms per example. Here the per-class figures and the
accuracy derive from the multi-class confusion matrix that
`MultiClassConfusionMatrixPlot` computes anyway (TFMA runs it once for all of
them), and the loss is one combiner.

The keys are those of the stock metrics: `accuracy`, `loss`, and `precision`
/ `recall` with sub key (class_id=k, top_k=1). A class counts as predicted
when it is the top class; a precision that is 0/0 (a class never predicted)
is NaN.
"""

from __future__ import annotations

from typing import Iterable

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util
from tensorflow_model_analysis.metrics import multi_class_confusion_matrix_metrics as mcm

EPSILON = 1e-7  # probabilities are clipped to [EPSILON, 1 - EPSILON], as Keras does


def _matrix(matrices, num_classes: int) -> np.ndarray:
  """[actual, predicted] weighted counts at threshold 0 (the top class)."""
  counts = np.zeros((num_classes, num_classes + 1))  # last column: no prediction
  for entry, weight in matrices[0.0].items():
    if 0 <= entry.actual_class_id < num_classes:
      counts[entry.actual_class_id, entry.predicted_class_id] += weight
  return counts


def _ratio(numerator: float, denominator: float) -> float:
  return float(numerator / denominator) if denominator else float('nan')


def _derived(result_fn, keys, eval_config, model_name, output_name,
             example_weighted):
  """The confusion-matrix computation and one derived from it."""
  computations = mcm.multi_class_confusion_matrices(
      thresholds=[0.0], eval_config=eval_config, model_name=model_name,
      output_name=output_name, example_weighted=example_weighted)
  matrices_key = computations[-1].keys[-1]
  computations.append(metric_types.DerivedMetricComputation(
      keys=keys, result=lambda metrics: result_fn(metrics[matrices_key])))
  return computations


def _accuracy(name='accuracy', num_classes=10, code_fingerprint='',
              eval_config=None, model_name='', output_name='',
              example_weighted=False):
  del code_fingerprint  # in the config only, so an edit re-runs the Evaluator
  key = metric_types.MetricKey(name=name, model_name=model_name,
                               output_name=output_name,
                               example_weighted=example_weighted)

  def accuracy(matrices):
    counts = _matrix(matrices, num_classes)
    return {key: _ratio(np.trace(counts[:, :num_classes]), counts.sum())}
  accuracy.__name__ = f'_accuracy_{name}'
  return _derived(accuracy, [key], eval_config, model_name, output_name,
                  example_weighted)


def _per_class(num_classes=10, code_fingerprint='', eval_config=None,
               model_name='', output_name='', example_weighted=False):
  del code_fingerprint
  def key(name, k):
    return metric_types.MetricKey(
        name=name, model_name=model_name, output_name=output_name,
        sub_key=metric_types.SubKey(class_id=k, top_k=1),
        example_weighted=example_weighted)
  keys = [key(n, k) for n in ('precision', 'recall') for k in range(num_classes)]

  def precision_recall(matrices):
    counts = _matrix(matrices, num_classes)
    out = {}
    for k in range(num_classes):
      hits = counts[k, k]
      out[key('precision', k)] = _ratio(hits, counts[:, k].sum())
      out[key('recall', k)] = _ratio(hits, counts[k].sum())
    return out
  return _derived(precision_recall, keys, eval_config, model_name, output_name,
                  example_weighted)


class TopOneAccuracy(metric_types.Metric):
  """The fraction of examples whose top class is their label."""

  def __init__(self, name: str = 'accuracy', num_classes: int = 10,
               code_fingerprint: str = ''):
    super().__init__(metric_util.merge_per_key_computations(_accuracy),
                     name=name, num_classes=num_classes,
                     code_fingerprint=code_fingerprint)


class PerClassPrecisionRecall(metric_types.Metric):
  """Precision and recall of each class, the top class counting as predicted."""

  def __init__(self, num_classes: int = 10, code_fingerprint: str = ''):
    super().__init__(metric_util.merge_per_key_computations(_per_class),
                     num_classes=num_classes, code_fingerprint=code_fingerprint)


class SparseCrossEntropy(metric_types.Metric):
  """Mean -log p(label) of probabilities, as Keras's
  SparseCategoricalCrossentropy computes it (renormalised, clipped)."""

  def __init__(self, name: str = 'loss', code_fingerprint: str = ''):
    super().__init__(metric_util.merge_per_key_computations(_cross_entropy),
                     name=name, code_fingerprint=code_fingerprint)


def _cross_entropy(name='loss', code_fingerprint='', eval_config=None,
                   model_name='', output_name='', example_weighted=False):
  del code_fingerprint
  key = metric_types.MetricKey(name=name, model_name=model_name,
                               output_name=output_name,
                               example_weighted=example_weighted)
  return [metric_types.MetricComputation(
      keys=[key], preprocessors=None,
      combiner=_CrossEntropyCombiner(key, eval_config, example_weighted))]


class _CrossEntropyCombiner(beam.CombineFn):
  """(sum of weighted -log p(label), sum of weights) -> their ratio."""

  def __init__(self, key, eval_config, example_weighted: bool):
    self._key, self._eval_config = key, eval_config
    self._example_weighted = example_weighted

  def create_accumulator(self) -> np.ndarray:
    return np.zeros(2)

  def add_input(self, accumulator: np.ndarray, element) -> np.ndarray:
    label, prediction, weight = next(metric_util.to_label_prediction_example_weight(
        element, eval_config=self._eval_config,
        model_name=self._key.model_name, output_name=self._key.output_name,
        example_weighted=self._example_weighted, flatten=False,
        require_single_example_weight=True))
    prediction = np.asarray(prediction, np.float64).reshape(-1)
    label = np.asarray(label).reshape(-1)
    k = int(np.argmax(label)) if label.size > 1 else int(label[0])
    p = np.clip(prediction[k] / prediction.sum(), EPSILON, 1 - EPSILON)
    weight = float(weight)
    accumulator += (-np.log(p) * weight, weight)
    return accumulator

  def merge_accumulators(self, accumulators: Iterable[np.ndarray]) -> np.ndarray:
    return np.sum(list(accumulators), axis=0)

  def extract_output(self, accumulator: np.ndarray) -> dict:
    return {self._key: _ratio(accumulator[0], accumulator[1])}
