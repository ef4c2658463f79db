"""Reads the metrics an Evaluator (TFMA) wrote, overall and per class.

Called by `components/selector.py` (test accuracy of each candidate) and by
the report (`pipeline/report/tfma_results.py`). TFMA is imported inside.
"""

from __future__ import annotations

import math


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
