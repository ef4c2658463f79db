"""Reads ExampleValidator's anomalies (one SchemaDiff.pb per split) as text.

Called by `components.data_gate` (which fails the run on them) and by the
report (`pipeline/report/facts.py`). Imports no TFX, so the report stays fast.
"""

from __future__ import annotations

import os

from components import fileio

ANOMALIES_FILE = 'SchemaDiff.pb'


def describe(anomalies_uri: str, split_names: list[str]) -> list[str]:
  """One line per anomaly: `[split] feature 'name': TFDV's description`."""
  from tensorflow_metadata.proto.v0 import anomalies_pb2
  lines = []
  for split in split_names:
    path = os.path.join(anomalies_uri, f'Split-{split}', ANOMALIES_FILE)
    anomalies = anomalies_pb2.Anomalies()
    with fileio.open_file(path, 'rb') as f:
      anomalies.ParseFromString(f.read())
    for feature, info in sorted(anomalies.anomaly_info.items()):
      reasons = '; '.join(r.description for r in info.reason) or info.description
      lines.append(f'[{split}] feature {feature!r}: {reasons}')
    if anomalies.HasField('dataset_anomaly_info'):
      info = anomalies.dataset_anomaly_info
      reasons = '; '.join(r.description for r in info.reason) or info.description
      lines.append(f'[{split}] dataset: {reasons}')
  return lines
