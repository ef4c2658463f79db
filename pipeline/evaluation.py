"""The TFMA evaluation configuration shared by every candidate's Evaluator.

Called by `pipeline.create.create_pipeline`; read back by
`components/selector.py` (the metric named `accuracy`) and by the run
summary.
"""

from __future__ import annotations

import json

from components.cifar10 import LABEL_KEY, NUM_CLASSES

PREDICTION_KEY = 'probabilities'


def eval_config(accuracy_threshold: float, num_classes: int = NUM_CLASSES):
  import tensorflow_model_analysis as tfma
  accuracy = tfma.MetricConfig(
      class_name='SparseCategoricalAccuracy',
      config=json.dumps({'name': 'accuracy'}),
      threshold=tfma.MetricThreshold(value_threshold=tfma.GenericValueThreshold(
          lower_bound={'value': accuracy_threshold})))
  overall = tfma.MetricsSpec(metrics=[
      tfma.MetricConfig(class_name='ExampleCount'),
      accuracy,
      tfma.MetricConfig(class_name='SparseCategoricalCrossentropy',
                        config=json.dumps({'name': 'loss'})),
      tfma.MetricConfig(class_name='MultiClassConfusionMatrixPlot'),
  ])
  per_class = tfma.MetricsSpec(
      # top_k=1: a class counts as predicted when it is the top class, not
      # when its probability passes 0.5 (which a 10-way model rarely does).
      metrics=[tfma.MetricConfig(class_name='Precision',
                                 config=json.dumps({'top_k': 1})),
               tfma.MetricConfig(class_name='Recall',
                                 config=json.dumps({'top_k': 1}))],
      binarize=tfma.BinarizationOptions(
          class_ids={'values': list(range(num_classes))}))
  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(signature_name='serving_default',
                                  label_key=LABEL_KEY,
                                  prediction_key=PREDICTION_KEY)],
      slicing_specs=[tfma.SlicingSpec()],
      metrics_specs=[overall, per_class])
