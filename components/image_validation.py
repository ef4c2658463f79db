"""ImageValidator: the image-aware half of data validation, as a TFX component.

Called by `pipeline.create.create_pipeline`, which feeds it
Cifar10ExampleGen's examples and hands its report to the DataGate
(`components/data_gate.py`): the gate fails the run when the report has
failures, so Transform and the Trainers cannot start on data that fails
these checks either. The checks themselves
(decode to 32x32x3, class balance per split, exact and near duplicates of
test images in train/validation) live in `components/image_checks.py`.

Writes `report.json` (and `duplicates.png`, the first duplicate pairs side by
side) into its output artifact, and records `passed`, the failures and the
duplicate counts as custom properties in ML Metadata. No `from __future__
import annotations` here: TFX's @component reads the annotations at runtime.
"""

import io
import json
import logging
import os
import time

from tfx import v1 as tfx
from tfx.types.artifact import Artifact

from components import fileio

REPORT_FILE = 'report.json'
SHEET_FILE = 'duplicates.png'
_log = logging.getLogger(__name__)
_FEATURES = ('id', 'label', 'image')


class ImageValidationReport(Artifact):
  """What the ImageValidator found: report.json, duplicates.png."""
  # KFP compiles a custom type only as `<namespace>.<Name>`, and TFX's pod
  # entrypoint imports the class from that name: so, an import path.
  TYPE_NAME = 'components.ImageValidationReport'


def read_split(examples_uri: str, split: str) -> tuple[list[str], list[int],
                                                       list[bytes]]:
  """(ids, labels, encoded images) of one split of an Examples artifact.

  A missing feature reads as '' (id, image) or -1 (label), which the checks
  then report; ExampleValidator reports the missing feature itself.
  """
  import tensorflow as tf
  files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, f'Split-{split}',
                                               '*')))
  spec = {
      'id': tf.io.FixedLenFeature([], tf.string, default_value=''),
      'label': tf.io.FixedLenFeature([], tf.int64, default_value=-1),
      'image': tf.io.FixedLenFeature([], tf.string, default_value=''),
  }
  compression = 'GZIP' if files and files[0].endswith('.gz') else ''
  dataset = tf.data.TFRecordDataset(files, compression_type=compression)
  ids, labels, images = [], [], []
  for batch in dataset.batch(4096).map(
      lambda b: tf.io.parse_example(b, spec)).as_numpy_iterator():
    ids += [i.decode('utf-8', 'replace') for i in batch['id']]
    labels += batch['label'].tolist()
    images += list(batch['image'])
  return ids, labels, images


def contact_sheet(found: list[dict], pixels: dict, path: str,
                  rows: int = 10) -> None:
  """Writes the first `rows` duplicate pairs (test | match), 3x enlarged."""
  from PIL import Image
  pairs = [(pixels.get(f['test']), pixels.get(f['match'])) for f in found]
  pairs = [p for p in pairs if p[0] is not None and p[1] is not None][:rows]
  if not pairs:
    return
  scale, gap = 3, 6
  side = 32 * scale
  sheet = Image.new('RGB', (2 * side + gap, len(pairs) * (side + gap)), 'white')
  for row, pair in enumerate(pairs):
    for column, array in enumerate(pair):
      image = Image.fromarray(array).resize((side, side), Image.NEAREST)
      sheet.paste(image, (column * (side + gap), row * (side + gap)))
  out = io.BytesIO()
  sheet.save(out, format='PNG')
  with fileio.open_file(path, 'wb') as f:
    f.write(out.getvalue())


@tfx.dsl.components.component
def ImageValidator(
    examples: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.Examples],
    report: tfx.dsl.components.OutputArtifact[ImageValidationReport],
    settings: tfx.dsl.components.Parameter[str],
    code_fingerprint: tfx.dsl.components.Parameter[str] = '',
) -> None:
  """Checks the images of every split; the DataGate acts on the report.

  Args:
    examples: Cifar10ExampleGen's output (train, validation, test).
    report: where report.json and duplicates.png go.
    settings: `image_checks.ImageValidationConfig` as JSON
      (`components.settings`).
    code_fingerprint: only there to invalidate the cache on code changes.
  """
  del code_fingerprint
  import dataclasses

  from tfx.types import artifact_utils

  from components import image_checks
  from components import settings as settings_lib
  from components.cifar10 import CLASS_NAMES
  limits = settings_lib.from_json(image_checks.ImageValidationConfig, settings)
  start = time.time()
  splits = {}
  for split in artifact_utils.decode_split_names(examples.split_names):
    ids, labels, images = read_split(examples.uri, split)
    splits[split] = image_checks.decode(split, ids, labels, images)
  found = image_checks.check(splits, dataclasses.asdict(limits), list(CLASS_NAMES))
  found['seconds'] = round(time.time() - start, 2)
  fileio.makedirs(report.uri)
  with fileio.open_file(os.path.join(report.uri, REPORT_FILE), 'w') as f:
    f.write(json.dumps(found, indent=1))
  duplicates = found.get('duplicates', {})
  shown = duplicates.get('examples', [])
  wanted = {f[key] for f in shown for key in ('test', 'match')}
  pixels = {s.ids[i]: s.pixels[row] for s in splits.values()
            for row, i in enumerate(s.ok.tolist()) if s.ids[i] in wanted}
  contact_sheet(shown, pixels, os.path.join(report.uri, SHEET_FILE))
  report.set_int_custom_property('passed', int(found['passed']))
  report.set_string_custom_property('failures', json.dumps(found['failures']))
  for key in ('exact', 'near'):
    report.set_int_custom_property(f'duplicates_{key}', duplicates.get(key, 0))
  _log.info('Image checks: %s in %.1f s; %s of %s test images duplicate '
            'train/validation (%s exact, %s near).',
            'passed' if found['passed'] else
            f'{len(found["failures"])} failure(s)', found['seconds'],
            duplicates.get('exact', 0) + duplicates.get('near', 0),
            duplicates.get('query_images', 0), duplicates.get('exact', 0),
            duplicates.get('near', 0))


def failures(report_uri: str) -> list[str]:
  """The failures in a report artifact's report.json (for the DataGate)."""
  with fileio.open_file(os.path.join(report_uri, REPORT_FILE)) as f:
    return list(json.loads(f.read())['failures'])
