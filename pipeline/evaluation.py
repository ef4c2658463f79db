"""The TFMA evaluation configuration shared by every candidate's Evaluator.

Called by `pipeline.create.create_pipeline`; read back by
`components/selector.py` (the metric named `accuracy`) and by the run
summary. Accuracy, loss and per-class precision/recall are the native
metrics of `components.tfma_metrics` (what each costs: bench/RESULTS.md); the
confusion matrix is TFMA's own plot, which they derive from.
"""

from __future__ import annotations

import json

from components.cifar10 import LABEL_KEY, NUM_CLASSES
from components.fingerprint import code_fingerprint

PREDICTION_KEY = 'probabilities'
METRICS_MODULE = 'components.tfma_metrics'


def eval_config(accuracy_threshold: float, num_classes: int = NUM_CLASSES):
  import tensorflow_model_analysis as tfma
  fingerprint = code_fingerprint(METRICS_MODULE)

  def ours(class_name: str, threshold=None, **config):
    """A metric of METRICS_MODULE; its code fingerprint re-runs the Evaluator
    when that code changes."""
    return tfma.MetricConfig(
        class_name=class_name, module=METRICS_MODULE, threshold=threshold,
        config=json.dumps({**config, 'code_fingerprint': fingerprint}))

  accuracy_floor = tfma.MetricThreshold(
      value_threshold=tfma.GenericValueThreshold(
          lower_bound={'value': accuracy_threshold}))
  metrics = tfma.MetricsSpec(metrics=[
      tfma.MetricConfig(class_name='ExampleCount'),
      ours('TopOneAccuracy', accuracy_floor, name='accuracy',
           num_classes=num_classes),
      ours('SparseCrossEntropy', name='loss'),
      tfma.MetricConfig(class_name='MultiClassConfusionMatrixPlot'),
      ours('PerClassPrecisionRecall', num_classes=num_classes),
  ])
  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(signature_name='serving_default',
                                  label_key=LABEL_KEY,
                                  prediction_key=PREDICTION_KEY)],
      slicing_specs=[tfma.SlicingSpec()],
      metrics_specs=[metrics])
