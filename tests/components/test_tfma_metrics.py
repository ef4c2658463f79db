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


def inputs_of(labels, probabilities, weights=None, as_dict=False) -> list:
  """StandardMetricInputs as TFMA's extractors make them (the predictions a
  dict of the serving outputs when `as_dict`)."""
  weights = np.ones(len(labels)) if weights is None else weights
  out = []
  for label, p, w in zip(labels, probabilities, weights):
    p = np.asarray(p, np.float32)
    prediction = {'probabilities': p, 'class_ids': np.array([p.argmax()])} if as_dict else p
    out.append(metric_types.StandardMetricInputs(
        label=np.array([label]), prediction=prediction,
        example_weight=np.array([w], np.float32)))
  return out


def compute(metrics, inputs, example_weighted: bool = False) -> dict:
  """{key: value} of every computation of `metrics`, run as TFMA runs them: a
  computation several metrics share runs once (TFMA's de-duplication by
  combiner and keys), its combiner folds the inputs in two accumulators that
  are then merged (as Beam merges bundles), and the derived computations read
  the combiners' results."""
  config = tfma.EvalConfig(model_specs=[tfma.ModelSpec(
      label_key='label', prediction_key='probabilities')])
  combined, derived = [], []
  for metric in metrics:
    for computation in metric.computations(eval_config=config,
                                           example_weighted=example_weighted):
      if isinstance(computation, metric_types.MetricComputation):
        if computation not in combined:
          combined.append(computation)
      else:
        derived.append(computation)
  results = {}
  for computation in combined:
    combiner = computation.combiner
    halves = []
    for part in (inputs[::2], inputs[1::2]):
      accumulator = combiner.create_accumulator()
      for element in part:
        accumulator = combiner.add_input(accumulator, element)
      halves.append(accumulator)
    results.update(combiner.extract_output(combiner.merge_accumulators(halves)))
  for computation in derived:
    results.update(computation.result(results))
  return results


def assert_same_results(ours: dict, theirs: dict):
  """The same keys; floats equal to 1e-12 (a batch sums in another order),
  as are the shared combiner's summed loss and weight; the rest equal."""
  assert ours.keys() == theirs.keys()
  for key, value in ours.items():
    if isinstance(value, float):
      assert value == pytest.approx(theirs[key], rel=1e-12, nan_ok=True)
    elif isinstance(value, tfma_metrics.TopOneCounts):
      assert value.matrices == theirs[key].matrices
      assert value[1:] == pytest.approx(theirs[key][1:], rel=1e-12)
    else:
      assert value == theirs[key]


def evaluate(metric, labels, probabilities) -> dict:
  """{metric key: value} of `metric` over the examples."""
  results = compute([metric], inputs_of(labels, probabilities))
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


def test_the_plot_is_tfma_multi_class_confusion_matrix_plot(examples):
  """The same PlotKey and proto as TFMA's MultiClassConfusionMatrixPlot,
  including a tie (the first top class) and an all-zero row (no prediction),
  with and without example weights."""
  labels, probabilities = examples
  probabilities = probabilities.copy()
  probabilities[1] = [0.4, 0.4, 0.1, 0.1]
  probabilities[2] = [0.0, 0.0, 0.0, 0.0]
  weights = np.random.default_rng(1).uniform(0.5, 2.0, size=len(labels))
  for weighted in (False, True):
    for as_dict in (False, True):
      inputs = inputs_of(labels, probabilities, weights, as_dict)
      ours = compute([tfma_metrics.TopOneConfusionMatrixPlot()], inputs, weighted)
      stock = compute([tfma.metrics.MultiClassConfusionMatrixPlot()], inputs, weighted)
      plots = lambda r: {k: v for k, v in r.items()
                         if isinstance(k, metric_types.PlotKey)}
      assert plots(ours) == plots(stock) and len(plots(ours)) == 1
      (plot,) = plots(ours).values()
      entries = plot.matrices[0].entries
      assert sum(e.num_weighted_examples for e in entries) == pytest.approx(
          weights.sum() if weighted else len(labels))
      assert any(e.predicted_class_id == -1 for e in entries)


def test_every_metric_shares_one_combiner(examples):
  """Four metrics, one pass: TFMA de-duplicates the shared combiner."""
  metrics = [tfma_metrics.TopOneAccuracy(num_classes=CLASSES),
             tfma_metrics.SparseCrossEntropy(),
             tfma_metrics.PerClassPrecisionRecall(num_classes=CLASSES),
             tfma_metrics.TopOneConfusionMatrixPlot()]
  config = tfma.EvalConfig(model_specs=[tfma.ModelSpec(prediction_key='probabilities')])
  combined = {c for m in metrics for c in m.computations(eval_config=config)
              if isinstance(c, metric_types.MetricComputation)}
  assert len(combined) == 1
  labels, probabilities = examples
  together = compute(metrics, inputs_of(labels, probabilities))
  alone = {}
  for metric in metrics:
    alone.update(compute([metric], inputs_of(labels, probabilities)))
  assert len(together) == 1 + 1 + 1 + 2 * CLASSES + 1
  assert_same_results(together, alone)


def test_example_weights_weigh_the_loss_and_the_accuracy(examples):
  """Weights given with the examples weigh the loss and the accuracy."""
  labels, probabilities = examples
  weights = np.where(np.arange(len(labels)) % 2 == 0, 3.0, 1.0)
  inputs = inputs_of(labels, probabilities, weights, as_dict=True)
  results = by_name({k: v for k, v in compute(
      [tfma_metrics.TopOneAccuracy(num_classes=CLASSES),
       tfma_metrics.SparseCrossEntropy()], inputs, example_weighted=True).items()
      if k.name in ('accuracy', 'loss')})
  top = probabilities.argmax(axis=1)
  p = np.clip(probabilities[np.arange(len(labels)), labels], 1e-7, 1 - 1e-7)
  assert results[('accuracy', None)] == pytest.approx(
      np.average(top == labels, weights=weights))
  assert results[('loss', None)] == pytest.approx(
      np.average(-np.log(p), weights=weights), rel=1e-5)


ALL = (lambda: [tfma_metrics.TopOneExampleCount(),
                tfma_metrics.TopOneAccuracy(num_classes=CLASSES),
                tfma_metrics.SparseCrossEntropy(),
                tfma_metrics.PerClassPrecisionRecall(num_classes=CLASSES),
                tfma_metrics.TopOneConfusionMatrixPlot()])


def batched(inputs: list, size: int) -> list:
  """The inputs as TFMA holds a batch of them when nothing unbatches it:
  labels [n, 1], predictions {name: [n, ...]}, weights [n]."""
  out = []
  for start in range(0, len(inputs), size):
    part = inputs[start:start + size]
    prediction = part[0].prediction
    if isinstance(prediction, dict):
      prediction = {k: np.stack([x.prediction[k] for x in part]) for k in prediction}
    else:
      prediction = np.stack([x.prediction for x in part])
    out.append(metric_types.StandardMetricInputs(
        label=np.stack([x.label for x in part]), prediction=prediction,
        example_weight=np.concatenate([x.example_weight for x in part])))
  return out


@pytest.mark.parametrize('weighted', [False, True])
def test_batches_fold_to_what_single_examples_fold_to(examples, weighted):
  labels, probabilities = examples
  weights = np.random.default_rng(2).uniform(0.5, 2.0, size=len(labels))
  single = inputs_of(labels, probabilities, weights, as_dict=True)
  one_by_one = compute(ALL(), single, weighted)
  in_batches = compute(ALL(), batched(single, 16), weighted)  # 60 = 16+16+16+12
  assert_same_results(in_batches, one_by_one)


@pytest.mark.parametrize('weighted', [False, True])
def test_example_count_is_tfma_example_count(examples, weighted):
  labels, probabilities = examples
  weights = np.random.default_rng(3).uniform(0.5, 2.0, size=len(labels))
  inputs = inputs_of(labels, probabilities, weights)
  ours = compute([tfma_metrics.TopOneExampleCount()], inputs, weighted)
  stock = compute([tfma.metrics.ExampleCount()], inputs, weighted)
  count = lambda r: {k: v for k, v in r.items() if k.name == 'example_count'}
  assert count(ours).keys() == count(stock).keys()
  for key, value in count(stock).items():
    assert count(ours)[key] == pytest.approx(value, rel=1e-12)
  # On one batch of all of them, TFMA's counts the element; ours its examples.
  assert list(count(compute([tfma_metrics.TopOneExampleCount()],
                            batched(inputs, 100), weighted)).values()) == [
      pytest.approx(weights.sum() if weighted else len(labels))]


def test_inputs_it_cannot_read_are_refused_with_their_reason():
  element = metric_types.StandardMetricInputs(
      label={'a': np.array([[1], [2]])},
      prediction=np.full((2, 4), 0.25, np.float32),
      example_weight=np.array([1.0, 1.0]))
  (counts,) = [c for c in tfma_metrics.TopOneAccuracy().computations(
      eval_config=tfma.EvalConfig(model_specs=[tfma.ModelSpec()]))
      if isinstance(c, metric_types.MetricComputation)]
  with pytest.raises(ValueError, match='batch of 2 examples'):
    counts.combiner.add_input(counts.combiner.create_accumulator(), element)
  unlabelled = metric_types.StandardMetricInputs(
      label=np.array([], np.int64), prediction=np.full(4, 0.25, np.float32),
      example_weight=np.array([1.0]))
  with pytest.raises(ValueError, match='Label missing'):
    counts.combiner.add_input(counts.combiner.create_accumulator(), unlabelled)
