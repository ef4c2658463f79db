"""A gate between data validation and everything that consumes the data.

Called by `pipeline/create.py`, which wires it between ExampleValidator and
Transform/Trainers. ExampleValidator only records anomalies; it stops nothing.
This component reads them and either passes the curated schema on (Transform
and the Trainers take their schema from here, so they cannot start before it)
or fails the run with one message that lists every anomaly.
"""


import os

from tfx import v1 as tfx

ANOMALIES_FILE = 'SchemaDiff.pb'
SCHEMA_FILE = 'schema.pbtxt'
MARKER = 'Data validation failed'  # the command line looks for this text


class DataValidationError(RuntimeError):
  """The data has anomalies; nothing downstream may run."""


def describe_anomalies(anomalies_uri: str, split_names: list[str]) -> list[str]:
  """One line per anomaly: split, feature and TFDV's description."""
  from tensorflow_metadata.proto.v0 import anomalies_pb2
  lines = []
  for split in split_names:
    path = os.path.join(anomalies_uri, f'Split-{split}', ANOMALIES_FILE)
    anomalies = anomalies_pb2.Anomalies()
    with open(path, 'rb') as f:
      anomalies.ParseFromString(f.read())
    for feature, info in sorted(anomalies.anomaly_info.items()):
      reasons = '; '.join(r.description for r in info.reason) or info.description
      lines.append(f'  [{split}] feature {feature!r}: {reasons}')
    if anomalies.HasField('dataset_anomaly_info'):
      info = anomalies.dataset_anomaly_info
      reasons = '; '.join(r.description for r in info.reason) or info.description
      lines.append(f'  [{split}] dataset: {reasons}')
  return lines


@tfx.dsl.components.component
def DataGate(
    schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
    anomalies: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.ExampleAnomalies],
    validated_schema: tfx.dsl.components.OutputArtifact[
        tfx.types.standard_artifacts.Schema],
    code_fingerprint: tfx.dsl.components.Parameter[str] = '',
) -> None:
  """Passes `schema` on as `validated_schema` only if `anomalies` is empty."""
  del code_fingerprint  # only there to invalidate the cache on code changes
  from tfx.types import artifact_utils
  splits = artifact_utils.decode_split_names(anomalies.split_names)
  problems = describe_anomalies(anomalies.uri, splits)
  if problems:
    raise DataValidationError(
        f'{MARKER}: ExampleValidator found {len(problems)} anomal'
        f'{"y" if len(problems) == 1 else "ies"} against the curated schema '
        '(data/schema.pbtxt); nothing was transformed, trained or pushed.\n'
        + '\n'.join(problems) +
        '\nFix or remove the offending records in the --data source and run '
        'again.')
  with open(os.path.join(schema.uri, SCHEMA_FILE)) as src:
    text = src.read()
  os.makedirs(validated_schema.uri, exist_ok=True)
  with open(os.path.join(validated_schema.uri, SCHEMA_FILE), 'w') as dst:
    dst.write(text)
