"""The TFMA evaluation configuration shared by every candidate's Evaluator.

Called by `pipeline.create.create_pipeline`; read back by
`components/selector.py` (the metric named `accuracy`) and by the run
summary. Accuracy, loss, per-class precision/recall and the confusion matrix
plot (TFMA's, written by TFMA's code) are the native metrics of
`components.tfma_metrics`, all from one combiner (what each costs:
bench/RESULTS.md). The model is
called on batches of `inference_batch_size` by the extractors of
`components.tfma_extractors` (the Evaluator's `module_path`).
"""

from __future__ import annotations

import json

from components.cifar10 import LABEL_KEY, NUM_CLASSES
from components.fingerprint import code_fingerprint

PREDICTION_KEY = 'probabilities'
METRICS_MODULE = 'components.tfma_metrics'
EXTRACTORS_MODULE = 'components.tfma_extractors'  # the Evaluator's module_path


def eval_config(accuracy_threshold: float, batch_size: int,
                num_classes: int = NUM_CLASSES):
  """The EvalConfig of every Evaluator: `batch_size` examples per call of the
  model (`evaluation.batch_size`)."""
  import tensorflow_model_analysis as tfma
  fingerprint = code_fingerprint(METRICS_MODULE, EXTRACTORS_MODULE)

  def ours(class_name: str, threshold=None, **config):
    """A metric of METRICS_MODULE; the code fingerprint (of it and of
    EXTRACTORS_MODULE) re-runs the Evaluator when that code changes."""
    return tfma.MetricConfig(
        class_name=class_name, module=METRICS_MODULE, threshold=threshold,
        config=json.dumps({**config, 'code_fingerprint': fingerprint}))

  accuracy_floor = tfma.MetricThreshold(
      value_threshold=tfma.GenericValueThreshold(
          lower_bound={'value': accuracy_threshold}))
  metrics = tfma.MetricsSpec(metrics=[
      ours('TopOneExampleCount'),
      ours('TopOneAccuracy', accuracy_floor, name='accuracy',
           num_classes=num_classes),
      ours('SparseCrossEntropy', name='loss'),
      ours('TopOneConfusionMatrixPlot'),
      ours('PerClassPrecisionRecall', num_classes=num_classes),
  ])
  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(signature_name='serving_default',
                                  label_key=LABEL_KEY,
                                  prediction_key=PREDICTION_KEY,
                                  inference_batch_size=batch_size)],
      slicing_specs=[tfma.SlicingSpec()],
      metrics_specs=[metrics])
