"""The image checks (components/image_checks.py) and the ImageValidator component.

Run by pytest. The checks get small hand-made splits; the component's
executor runs on a tiny Examples artifact written here, and its report goes
through the DataGate's message. The measurement on the full shared CIFAR-10
copy is marked `slow` (about a minute): `pytest -m slow`.
"""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from components import image_checks
from components.cifar10 import CLASS_NAMES
from components.image_checks import ImageValidationConfig

SETTINGS = vars(ImageValidationConfig())
SHARED = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'shared',
                      'datasets', 'cifar10-jpeg.tar.gz')


def smooth_images(n: int, seed: int) -> np.ndarray:
  """uint8 [n, 32, 32, 3]: random 8x8 colour fields upsampled (photo-like)."""
  rng = np.random.default_rng(seed)
  small = rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
  return np.stack([np.asarray(Image.fromarray(s).resize((32, 32), Image.BICUBIC))
                   for s in small])


def encode(pixels: np.ndarray, fmt: str = 'PNG', **kwargs) -> bytes:
  out = io.BytesIO()
  Image.fromarray(pixels).save(out, format=fmt, **kwargs)
  return out.getvalue()


def jpeg_again(pixels: np.ndarray, shift: int = 0) -> np.ndarray:
  """The same photo re-encoded as JPEG q=75 and made a bit brighter."""
  brighter = np.clip(pixels.astype(int) + shift, 0, 255).astype(np.uint8)
  with Image.open(io.BytesIO(encode(brighter, 'JPEG', quality=75))) as image:
    return np.asarray(image.convert('RGB'))


def split(name: str, pixels: np.ndarray, labels=None, extra=()) -> image_checks.Split:
  labels = list(range(10)) * (len(pixels) // 10) if labels is None else labels
  ids = [f'{name}/{i:04d}.png' for i in range(len(pixels))]
  encoded = [encode(p) for p in pixels]
  for image_id, label, data in extra:
    ids.append(image_id)
    labels = list(labels) + [label]
    encoded.append(data)
  return image_checks.decode(name, ids, labels, encoded)


def test_decode_keeps_rgb_32x32_and_names_the_rest():
  good = smooth_images(10, 0)
  truncated = encode(good[0])[:60]
  gray = encode(good[1][..., 0])
  rgba = encode(np.dstack([good[2], np.full((32, 32), 255, np.uint8)]))
  small = encode(good[3][:28, :28])
  got = split('train', good, extra=[
      ('bad/random.png', 0, b'\x89PNG random bytes'), ('bad/trunc.png', 1, truncated),
      ('bad/gray.png', 2, gray), ('bad/rgba.png', 3, rgba),
      ('bad/small.png', 4, small)])
  assert got.ok.tolist() == list(range(10)) and got.pixels.shape == (10, 32, 32, 3)
  np.testing.assert_array_equal(got.pixels, good)
  why = dict(got.bad)
  assert why['bad/random.png'].startswith('does not decode')
  assert why['bad/trunc.png'].startswith('does not decode')
  assert why['bad/gray.png'] == 'L 32x32, not RGB 32x32'
  assert why['bad/rgba.png'] == 'RGBA 32x32, not RGB 32x32'
  assert why['bad/small.png'] == 'RGB 28x28, not RGB 32x32'


def test_phash_is_stable_under_recompression_and_far_between_photos():
  images = smooth_images(50, 1)
  hashes = image_checks.phash(images)
  again = image_checks.phash(np.stack([jpeg_again(p, 12) for p in images]))
  assert hashes.shape == (50, 64) and (hashes.sum(axis=1) == 32).all()
  same = (hashes != again).sum(axis=1)
  assert same.max() <= 4, same
  between = (hashes[:, None] != hashes[None]).sum(axis=2)[np.triu_indices(50, 1)]
  assert np.median(between) >= 24 and between.min() > 8


def test_duplicates_exact_near_and_none():
  train = smooth_images(40, 2)
  test = smooth_images(20, 3)
  test[0] = train[5]  # the same pixels
  test[1] = jpeg_again(train[7], 10)  # the same photo, re-encoded and brighter
  test[2] = np.clip(train[9].astype(int) + 40, 0, 255)  # brighter by 40 levels
  found = image_checks.duplicates([split('train', train)], split('test', test),
                                  max_bits=12, min_correlation=0.9)
  assert sorted((f['test'], f['match'], f['kind']) for f in found) == [
      ('test/0000.png', 'train/0005.png', 'exact'),
      ('test/0001.png', 'train/0007.png', 'near'),
      ('test/0002.png', 'train/0009.png', 'near')]
  assert found[0]['kind'] == 'exact'  # the most certain first
  assert found[0]['bits'] == 0 and found[0]['labels'] == [0, 5]
  assert all(f['correlation'] >= 0.9 for f in found)
  none = image_checks.duplicates([split('train', train)],
                                 split('test', smooth_images(20, 4)), 12, 0.9)
  assert none == []


def test_check_passes_clean_data_and_lists_each_failure():
  clean = {'train': split('train', smooth_images(40, 5)),
           'validation': split('validation', smooth_images(10, 6)),
           'test': split('test', smooth_images(20, 7))}
  report = image_checks.check(clean, SETTINGS, list(CLASS_NAMES))
  assert report['passed'] and report['failures'] == []
  assert report['splits']['train']['class_counts'] == [4] * 10
  assert report['duplicates']['fraction'] == 0.0
  train = smooth_images(40, 5)
  test = smooth_images(20, 7)
  test[:3] = train[:3]  # 3 of 20 = 15% > 5%
  labels = [0] * 13 + [i for i in range(1, 10) for _ in range(3)]  # 13 planes
  bad = {'train': split('train', train, labels=labels),
         'validation': split('validation', smooth_images(10, 6)),
         'test': split('test', test, extra=[('test/x.png', 3, b'junk')])}
  report = image_checks.check(bad, SETTINGS, list(CLASS_NAMES))
  assert not report['passed']
  failures = '\n'.join(report['failures'])
  assert 'test: 1 of 21 images (4.8%) do not decode to 32x32x3' in failures
  assert 'test/x.png (does not decode' in failures
  assert 'train: a class count is 225% off the even share of 4.0' in failures
  assert 'airplane 13, automobile 3' in failures
  assert ('test: 3 of 21 images (14.3%) duplicate train/validation images '
          '(allowed 5.0%; 3 exact, 0 near), e.g. test/0000.png ~ train/0000.png'
          ) in failures
  assert report['duplicates']['per_class'][:3] == [1, 1, 1]
  loose = dict(SETTINGS, max_duplicate_fraction=0.2, class_balance_tolerance=2.5,
               max_undecodable_fraction=0.05)
  assert image_checks.check(bad, loose, list(CLASS_NAMES))['passed']


def _write_examples(uri: str, splits: dict) -> None:
  import tensorflow as tf

  from components.ingest.executor import to_example
  for name, records in splits.items():
    os.makedirs(os.path.join(uri, f'Split-{name}'))
    path = os.path.join(uri, f'Split-{name}', 'data_tfrecord-00000-of-00001.gz')
    with tf.io.TFRecordWriter(path, options='GZIP') as writer:
      for image_id, label, data in records:
        writer.write(to_example(image_id, label, data))


def test_component_writes_the_report_the_gate_acts_on(tmp_path):
  from tfx.types import artifact_utils, standard_artifacts

  from components import data_gate, image_validation
  train, test = smooth_images(30, 8), smooth_images(10, 9)
  test[4] = train[6]
  records = {
      'train': [(f'train/{i}.png', i % 10, encode(p)) for i, p in enumerate(train)],
      'validation': [(f'val/{i}.png', i, encode(p))
                     for i, p in enumerate(smooth_images(10, 10))],
      'test': [(f'test/{i}.png', i % 10, encode(p)) for i, p in enumerate(test)]}
  examples = standard_artifacts.Examples()
  examples.uri = str(tmp_path / 'examples')
  examples.split_names = artifact_utils.encode_split_names(list(records))
  _write_examples(examples.uri, records)
  report = image_validation.ImageValidationReport()
  report.uri = str(tmp_path / 'report')
  executor = image_validation.ImageValidator.EXECUTOR_SPEC.executor_class()
  executor.Do({'examples': [examples]}, {'report': [report]}, {
      'settings': json.dumps(SETTINGS), 'code_fingerprint': ''})
  with open(os.path.join(report.uri, image_validation.REPORT_FILE)) as f:
    written = json.load(f)
  assert written['duplicates']['exact'] == 1
  assert written['duplicates']['examples'][0]['match'] == 'train/6.png'
  assert os.path.exists(os.path.join(report.uri, image_validation.SHEET_FILE))
  assert report.get_int_custom_property('passed') == 0
  failures = image_validation.failures(report.uri)
  assert failures == written['failures'] and len(failures) == 1
  message = data_gate.failure_message(["  [train] feature 'label': x"], failures)
  assert message.startswith('Data validation failed: ExampleValidator found 1 '
                            'anomaly against the curated schema')
  assert 'and the image checks found 1 problem;' in message
  assert ('[images] test: 1 of 10 images (10.0%) duplicate train/validation '
          'images') in message
  assert '--set image_validation.' in message


@pytest.mark.slow
def test_measure_the_shared_cifar10_copy(tmp_path):
  """Ingests all 60,000 images of the shared copy and runs the checks on them."""
  import time

  from components.ingest import sources
  if not os.path.exists(SHARED):
    pytest.skip(f'{SHARED} is not here')
  source = sources.resolve_source(SHARED, str(tmp_path))
  splits = {}
  for name in sources.SPLITS:
    records = list(sources.read_split(source, name, validation_fraction=0.1,
                                      salt='cifar10-validation-v1'))
    splits[name] = image_checks.decode(name, [r[0] for r in records],
                                       [r[1] for r in records],
                                       [r[2] for r in records])
  start = time.time()
  report = image_checks.check(splits, SETTINGS, list(CLASS_NAMES))
  seconds = time.time() - start
  found = report['duplicates']
  print(json.dumps({k: found[k] for k in ('exact', 'near', 'fraction',
                                          'per_class', 'different_labels')}),
        f'{seconds:.1f} s')
  assert report['passed'] and seconds < 60
  assert found['exact'] == 0 and 100 <= found['near'] <= 400
