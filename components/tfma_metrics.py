"""TFMA metrics of a 10-way classifier, computed natively from one pass.

Called by TFMA inside every Evaluator, which imports this module by the name
that `pipeline.evaluation.eval_config` gives it. TFMA's stock metrics for the
same figures cost most of the Evaluator's time beyond inference: Keras
accuracy and loss run through tf_keras (AutoGraph converts it, seconds per
run), and per-class precision and recall binarised per class fill ten
calibration histograms per example. Here one combiner folds each example once
(`_TopOneCombiner`: the confusion matrix of the top class, TFMA's `Matrices`
at threshold 0, and the summed loss), and every metric derives from its
result: accuracy, per-class precision and recall, the loss, and the confusion
matrix plot, which TFMA's own `Matrices.to_proto` writes exactly as its
`MultiClassConfusionMatrixPlot` does (tests/components compare the two).
TFMA runs a combiner that several metrics share once (it de-duplicates
computations by combiner and key).

The combiner takes one example or a whole batch; so does `TopOneExampleCount`
(TFMA's ExampleCount counts one per element), which lets the Evaluator skip
splitting its batches into examples when every metric is one of these
(`components/tfma_extractors.py`).

The keys are those of the stock metrics: `example_count`, `accuracy`, `loss`,
`precision` / `recall` with sub key (class_id=k, top_k=1), and the plot
`multi_class_confusion_matrix_plot`. A class counts as predicted when it is
the top class; a precision that is 0/0 (a class never predicted) is NaN.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util
from tensorflow_model_analysis.metrics import multi_class_confusion_matrix_metrics as mcm
from tensorflow_model_analysis.utils import model_util

EPSILON = 1e-7  # probabilities are clipped to [EPSILON, 1 - EPSILON], as Keras does
PLOT_NAME = 'multi_class_confusion_matrix_plot'  # TFMA's MultiClassConfusionMatrixPlot's
_COUNTS_NAME = '_top_one_counts'  # private (leading '_'): TFMA writes it nowhere


class TopOneCounts(NamedTuple):
  matrices: mcm.Matrices  # {0.0: {MatrixEntryKey(actual, top class): weight}}
  loss: float  # sum of weighted -log p(label)
  weight: float  # sum of weights


class _TopOneCombiner(beam.CombineFn):
  """Per example: its (label, top class) cell and its loss, as TFMA's
  multi-class confusion matrix combiner and Keras's sparse cross-entropy
  compute them, for one example or a batch of them at once (the extractors of
  `components.tfma_extractors` hand over whole batches when every metric is
  one of these). Integer (or one-hot) labels and this model's probabilities
  are read directly; any other single example goes through TFMA's
  `to_label_prediction_example_weight`."""

  def __init__(self, key, eval_config, example_weighted: bool):
    self._key, self._eval_config = key, eval_config
    self._example_weighted = example_weighted
    spec = model_util.get_model_spec(eval_config, key.model_name) if eval_config else None
    self._prediction_key = spec.prediction_key if spec else ''

  def _arrays(self, element) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(actual class per example, probabilities [examples, classes], weights)."""
    label, prediction = element.label, element.prediction
    weight = element.example_weight if self._example_weighted else None
    if isinstance(prediction, dict) and self._prediction_key:
      prediction = prediction.get(self._prediction_key)
    if (not self._key.model_name and not self._key.output_name
        and isinstance(label, np.ndarray) and label.dtype.kind in 'biuf'
        and isinstance(prediction, np.ndarray) and prediction.ndim in (1, 2)
        and (weight is None or isinstance(weight, np.ndarray))):
      probabilities = prediction.reshape(-1, prediction.shape[-1])
      n = len(probabilities)
      if label.size and label.size % n == 0:
        labels = label.reshape(n, -1)
        actual = labels[:, 0] if labels.shape[1] == 1 else labels.argmax(axis=1)
        weights = (np.ones(n) if weight is None
                   else np.broadcast_to(np.asarray(weight, np.float64).reshape(-1), n))
        return actual.astype(np.int64), probabilities, weights
    if isinstance(prediction, np.ndarray) and prediction.ndim == 2 and len(prediction) > 1:
      raise ValueError(f'A batch of {len(prediction)} examples needs one label '
                       f'array and one probability array: {element}')
    label, prediction, weight = next(metric_util.to_label_prediction_example_weight(
        element, eval_config=self._eval_config,
        model_name=self._key.model_name, output_name=self._key.output_name,
        example_weighted=self._example_weighted, flatten=False,
        require_single_example_weight=True))
    if not label.size:
      raise ValueError(f'Label missing from example: {element}')
    actual = int(np.argmax(label)) if label.size > 1 else int(label.reshape(-1)[0])
    return (np.array([actual]), prediction.reshape(1, -1),
            np.array([float(weight)]))

  def create_accumulator(self) -> list:
    return [{}, 0.0, 0.0]  # cells, loss, weight

  def add_input(self, accumulator: list, element) -> list:
    actual, probabilities, weights = self._arrays(element)
    if probabilities.shape[1] < 2:
      raise ValueError(f'Predictions must hold one probability per class, got '
                       f'shape {probabilities.shape[1:]}: {element}')
    rows = np.arange(len(probabilities))
    top = probabilities.argmax(axis=1)
    predicted = np.where(probabilities[rows, top] > 0.0, top,
                         mcm.NO_PREDICTED_CLASS_ID)
    cells = accumulator[0]
    for cell, weight in zip(zip(actual.tolist(), predicted.tolist()), weights.tolist()):
      cell = mcm.MatrixEntryKey(*cell)
      cells[cell] = cells.get(cell, 0.0) + weight
    totals = probabilities.sum(axis=1, dtype=np.float64)
    p = np.divide(probabilities[rows, actual], totals, out=np.zeros(len(rows)),
                  where=totals > 0)  # all zero: p = 0
    accumulator[1] -= float(np.dot(np.log(np.clip(p, EPSILON, 1 - EPSILON)), weights))
    accumulator[2] += float(weights.sum())
    return accumulator

  def merge_accumulators(self, accumulators: Iterable[list]) -> list:
    merged = self.create_accumulator()
    for cells, loss, weight in accumulators:
      for cell, count in cells.items():
        merged[0][cell] = merged[0].get(cell, 0.0) + count
      merged[1] += loss
      merged[2] += weight
    return merged

  def extract_output(self, accumulator: list) -> dict:
    cells, loss, weight = accumulator
    return {self._key: TopOneCounts(mcm.Matrices({0.0: dict(cells)}), loss, weight)}


def _key(name: str, model_name: str, output_name: str, example_weighted: bool,
         sub_key=None, plot: bool = False):
  cls = metric_types.PlotKey if plot else metric_types.MetricKey
  return cls(name=name, model_name=model_name, output_name=output_name,
             sub_key=sub_key, example_weighted=example_weighted)


def _derived(result_fn, keys, eval_config, model_name, output_name,
             example_weighted) -> list:
  """The shared top-one combiner and one metric derived from its result."""
  counts_key = _key(_COUNTS_NAME, model_name, output_name, example_weighted)
  return [
      metric_types.MetricComputation(
          keys=[counts_key], preprocessors=None,
          combiner=_TopOneCombiner(counts_key, eval_config, example_weighted)),
      metric_types.DerivedMetricComputation(
          keys=keys, result=lambda metrics: result_fn(metrics[counts_key]))]


def _matrix(counts: TopOneCounts, num_classes: int) -> np.ndarray:
  """[actual, predicted] weighted counts (last column: no prediction)."""
  matrix = np.zeros((num_classes, num_classes + 1))
  for entry, weight in counts.matrices[0.0].items():
    if 0 <= entry.actual_class_id < num_classes:
      matrix[entry.actual_class_id, entry.predicted_class_id] += weight
  return matrix


def _ratio(numerator: float, denominator: float) -> float:
  return float(numerator / denominator) if denominator else float('nan')


def _accuracy(name='accuracy', num_classes=10, code_fingerprint='',
              eval_config=None, model_name='', output_name='',
              example_weighted=False):
  del code_fingerprint  # in the config only, so an edit re-runs the Evaluator
  key = _key(name, model_name, output_name, example_weighted)

  def accuracy(counts):
    matrix = _matrix(counts, num_classes)
    return {key: _ratio(np.trace(matrix[:, :num_classes]), matrix.sum())}
  return _derived(accuracy, [key], eval_config, model_name, output_name,
                  example_weighted)


def _per_class(num_classes=10, code_fingerprint='', eval_config=None,
               model_name='', output_name='', example_weighted=False):
  del code_fingerprint
  def key(name, k):
    return _key(name, model_name, output_name, example_weighted,
                sub_key=metric_types.SubKey(class_id=k, top_k=1))
  keys = [key(n, k) for n in ('precision', 'recall') for k in range(num_classes)]

  def precision_recall(counts):
    matrix, out = _matrix(counts, num_classes), {}
    for k in range(num_classes):
      out[key('precision', k)] = _ratio(matrix[k, k], matrix[:, k].sum())
      out[key('recall', k)] = _ratio(matrix[k, k], matrix[k].sum())
    return out
  return _derived(precision_recall, keys, eval_config, model_name, output_name,
                  example_weighted)


def _cross_entropy(name='loss', code_fingerprint='', eval_config=None,
                   model_name='', output_name='', example_weighted=False):
  del code_fingerprint
  key = _key(name, model_name, output_name, example_weighted)
  return _derived(lambda counts: {key: _ratio(counts.loss, counts.weight)}, [key],
                  eval_config, model_name, output_name, example_weighted)


def _example_count(name='example_count', code_fingerprint='', eval_config=None,
                   model_name='', output_name='', example_weighted=False):
  del code_fingerprint
  key = _key(name, model_name, output_name, example_weighted)
  return _derived(lambda counts: {key: counts.weight}, [key], eval_config,
                  model_name, output_name, example_weighted)


def _plot(name=PLOT_NAME, code_fingerprint='', eval_config=None, model_name='',
          output_name='', example_weighted=False):
  del code_fingerprint
  key = _key(name, model_name, output_name, example_weighted, plot=True)

  def plot(counts):
    return {key: counts.matrices.to_proto().multi_class_confusion_matrix_at_thresholds}
  return _derived(plot, [key], eval_config, model_name, output_name,
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


class TopOneConfusionMatrixPlot(metric_types.Metric):
  """TFMA's multi-class confusion matrix plot at threshold 0 (the top class,
  or no prediction when its probability is 0), from the shared combiner."""

  def __init__(self, name: str = PLOT_NAME, code_fingerprint: str = ''):
    super().__init__(metric_util.merge_per_key_computations(_plot),
                     name=name, code_fingerprint=code_fingerprint)


class TopOneExampleCount(metric_types.Metric):
  """The number of examples (their summed weight when weighted), as TFMA's
  ExampleCount, from the shared combiner, so it also counts whole batches."""

  def __init__(self, name: str = 'example_count', code_fingerprint: str = ''):
    super().__init__(metric_util.merge_per_key_computations(_example_count),
                     name=name, code_fingerprint=code_fingerprint)
