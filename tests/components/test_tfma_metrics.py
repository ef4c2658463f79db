"""The native TFMA metrics against numpy and Keras, computed as TFMA does.

Each metric's computations run as TFMA's evaluator runs them: the combiners
fold the per-example inputs (StandardMetricInputs, as the extractors make
them), then the derived computations read the combiners' results. What this
cannot check, the Beam plumbing around it, the e2e runs cover (their
Evaluators use these metrics; `tfma.load_eval_result` reads them back).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

tfma = pytest.importorskip('tensorflow_model_analysis')

from components import tfma_metrics  # noqa: E402
from tensorflow_model_analysis.metrics import metric_types  # noqa: E402

CLASSES = 4


def evaluate(metric, labels, probabilities) -> dict:
  """{metric key: value} of `metric` over the examples."""
  config = tfma.EvalConfig(model_specs=[tfma.ModelSpec(
      label_key='label', prediction_key='probabilities')])
  inputs = [metric_types.StandardMetricInputs(
      label=np.array([label]), prediction=np.asarray(p, np.float32),
      example_weight=np.array([1.0])) for label, p in zip(labels, probabilities)]
  results = {}
  for computation in metric.computations(eval_config=config):
    if isinstance(computation, metric_types.MetricComputation):
      combiner = computation.combiner
      halves = []  # two accumulators merged, as Beam merges bundles
      for part in (inputs[::2], inputs[1::2]):
        accumulator = combiner.create_accumulator()
        for element in part:
          accumulator = combiner.add_input(accumulator, element)
        halves.append(accumulator)
      results.update(combiner.extract_output(combiner.merge_accumulators(halves)))
    else:
      results.update(computation.result(results))
  return {key: value for key, value in results.items()
          if key.name in ('accuracy', 'loss', 'precision', 'recall')}


@pytest.fixture(scope='module')
def examples():
  """Probabilities whose top class is never 3; class 2 has no examples."""
  rng = np.random.default_rng(0)
  labels = rng.choice([0, 1, 3], size=60)
  logits = rng.normal(size=(60, CLASSES))
  logits[:, 3] -= 10.0
  probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
  probabilities[0] = [0.0, 1.0, 0.0, 0.0]  # p(label) may be 0: clipped
  labels[0] = 0
  return labels, probabilities


def by_name(results: dict) -> dict:
  out = {}
  for key, value in results.items():
    class_id = key.sub_key.class_id if key.sub_key else None
    assert key.sub_key is None or key.sub_key.top_k == 1
    out[(key.name, class_id)] = value
  return out


def test_accuracy_and_per_class_precision_recall_match_numpy(examples):
  labels, probabilities = examples
  top = probabilities.argmax(axis=1)
  results = by_name(evaluate(tfma_metrics.TopOneAccuracy(num_classes=CLASSES),
                             labels, probabilities))
  assert results == {('accuracy', None): pytest.approx((top == labels).mean())}
  results = by_name(evaluate(
      tfma_metrics.PerClassPrecisionRecall(num_classes=CLASSES),
      labels, probabilities))
  assert len(results) == 2 * CLASSES
  for k in (0, 1):
    hits = np.sum((top == k) & (labels == k))
    assert results[('precision', k)] == pytest.approx(hits / np.sum(top == k))
    assert results[('recall', k)] == pytest.approx(hits / np.sum(labels == k))
  # Never predicted: precision is 0/0, recall 0 of its examples.
  assert math.isnan(results[('precision', 3)]) and results[('recall', 3)] == 0.0
  # No examples: recall is 0/0.
  assert math.isnan(results[('recall', 2)])


def test_loss_is_keras_sparse_categorical_crossentropy(examples):
  import keras
  labels, probabilities = examples
  expected = float(np.mean(keras.losses.sparse_categorical_crossentropy(
      labels, probabilities.astype(np.float32))))
  results = by_name(evaluate(tfma_metrics.SparseCrossEntropy(),
                             labels, probabilities))
  assert results == {('loss', None): pytest.approx(expected, rel=1e-5)}
  # p(label) = 0 is clipped to 1e-7, as Keras clips it.
  alone = by_name(evaluate(tfma_metrics.SparseCrossEntropy(), labels[:1],
                           probabilities[:1]))
  assert alone[('loss', None)] == pytest.approx(-math.log(1e-7), rel=1e-6)


def test_the_code_fingerprint_is_only_a_cache_key(examples):
  labels, probabilities = examples
  plain = evaluate(tfma_metrics.TopOneAccuracy(), labels, probabilities)
  keyed = evaluate(tfma_metrics.TopOneAccuracy(code_fingerprint='abc'),
                   labels, probabilities)
  assert plain == keyed
