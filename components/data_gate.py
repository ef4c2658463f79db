"""A gate between data validation and everything that consumes the data.

Called by `pipeline.create.create_pipeline`, which wires it after ExampleValidator and the
ImageValidator (`components/image_validation.py`) and before
Transform/Trainers. Neither validator stops anything: ExampleValidator only
records anomalies, the ImageValidator only writes its report. This component
reads both and either passes the curated schema on (Transform and the Trainers
take their schema from here, so they cannot start before it) or fails the run
with one message that lists every anomaly and every failed image check.
"""


import os

from tfx import v1 as tfx

from components import anomalies as anomaly_files
from components import fileio, image_validation
from components.errors import UserError

SCHEMA_FILE = 'schema.pbtxt'


class DataValidationError(UserError, RuntimeError):
  """The data has anomalies; nothing downstream may run. The message lists
  them all and says what to do."""


def describe_anomalies(anomalies_uri: str, split_names: list[str]) -> list[str]:
  """One indented line per anomaly: split, feature and TFDV's description."""
  lines = anomaly_files.describe(anomalies_uri, split_names)
  return [f'  {line}' for line in lines]


@tfx.dsl.components.component
def DataGate(
    schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
    anomalies: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.ExampleAnomalies],
    image_report: tfx.dsl.components.InputArtifact[
        image_validation.ImageValidationReport],
    validated_schema: tfx.dsl.components.OutputArtifact[
        tfx.types.standard_artifacts.Schema],
    code_fingerprint: tfx.dsl.components.Parameter[str] = '',
) -> None:
  """Passes `schema` on as `validated_schema` only if both checks passed."""
  del code_fingerprint  # only there to invalidate the cache on code changes
  from tfx.types import artifact_utils
  splits = artifact_utils.decode_split_names(anomalies.split_names)
  problems = describe_anomalies(anomalies.uri, splits)
  image_problems = image_validation.failures(image_report.uri)
  if problems or image_problems:
    raise DataValidationError(failure_message(problems, image_problems))
  with fileio.open_file(os.path.join(schema.uri, SCHEMA_FILE)) as src:
    text = src.read()
  fileio.makedirs(validated_schema.uri)
  with fileio.open_file(os.path.join(validated_schema.uri, SCHEMA_FILE),
                        'w') as dst:
    dst.write(text)


def failure_message(anomalies: list[str], image_problems: list[str]) -> str:
  """The one message of a failed gate: every anomaly, every failed check."""
  parts = []
  if anomalies:
    parts.append(f'ExampleValidator found {len(anomalies)} anomal'
                 f'{"y" if len(anomalies) == 1 else "ies"} against the curated '
                 'schema (data/schema.pbtxt)')
  if image_problems:
    parts.append(f'the image checks found {len(image_problems)} problem'
                 f'{"" if len(image_problems) == 1 else "s"}')
  lines = anomalies + [f'  [images] {p}' for p in image_problems]
  hint = ('\nFix or remove the offending records in the --data source and run '
          'again.')
  if image_problems:
    hint += (' If a finding is expected, loosen its limit with --set '
             'image_validation.<field>=... (see pipeline/config.py).')
  return (f'Data validation failed: {" and ".join(parts)}; nothing was transformed, trained '
          'or pushed.\n' + '\n'.join(lines) + hint)
