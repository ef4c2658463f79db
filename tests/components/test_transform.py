"""preprocessing_fn on a real batch, run through TFT's Beam implementation."""

from __future__ import annotations

import io
import pathlib
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import synthetic_images

tf = pytest.importorskip('tensorflow')


def _png(image: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format='PNG')
  return buffer.getvalue()


def _jpeg(image: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format='JPEG', quality=95)
  return buffer.getvalue()


@pytest.fixture(scope='module')
def transformed(tmp_path_factory):
  import tensorflow_transform as tft
  import tensorflow_transform.beam as tft_beam
  from tensorflow_transform.tf_metadata import (dataset_metadata, metadata_io,
                                                schema_utils)

  from components.transform import preprocessing_fn

  images, labels = synthetic_images(20)
  raw = [{'image': [_png(im)], 'label': [int(lb)]}
         for im, lb in zip(images, labels)]
  metadata = dataset_metadata.DatasetMetadata(
      schema_utils.schema_from_feature_spec({
          'image': tf.io.FixedLenFeature([1], tf.string),
          'label': tf.io.FixedLenFeature([1], tf.int64)}))
  out = str(tmp_path_factory.mktemp('tft'))
  with tft_beam.Context(temp_dir=out + '/tmp', force_tf_compat_v1=False):
    (data, _), transform_fn = (raw, metadata) | tft_beam.AnalyzeAndTransformDataset(
        preprocessing_fn, output_record_batches=False)
    _ = transform_fn | tft_beam.WriteTransformFn(out)
  # The raw schema, which TFX's Transform writes beside the graph.
  metadata_io.write_metadata(
      metadata, f'{out}/{tft.TFTransformOutput.RAW_METADATA_DIR}')
  return images, labels, data, tft.TFTransformOutput(out)


def test_transformed_batch_is_normalised_per_channel(transformed):
  images, labels, data, _ = transformed
  batch = np.stack([np.asarray(row['image']).reshape(32, 32, 3) for row in data])
  assert batch.dtype == np.float32 and batch.shape == (200, 32, 32, 3)
  np.testing.assert_allclose(batch.mean(axis=(0, 1, 2)), 0.0, atol=1e-3)
  np.testing.assert_allclose(batch.std(axis=(0, 1, 2)), 1.0, atol=1e-3)
  assert [int(np.asarray(row['label']).reshape(())) for row in data] == list(labels)
  # The normalisation is affine per channel: it preserves the pixel order.
  raw = images.astype(np.float32) / 255.0
  expected = (raw - raw.mean(axis=(0, 1, 2))) / raw.std(axis=(0, 1, 2))
  np.testing.assert_allclose(batch, expected, atol=3e-3)  # float32 analyzers


def test_transform_layer_decodes_jpeg_png_any_size_and_rejects_non_images(transformed):
  images, _, data, tft_output = transformed
  layer = tft_output.transform_features_layer()
  big = np.asarray(Image.fromarray(images[0]).resize((64, 64)))
  gray = images[1].mean(axis=2).astype(np.uint8)
  encoded = tf.constant([[_png(images[0])], [_jpeg(images[0])], [_png(big)],
                         [_png(gray)]])
  out = layer({'image': encoded})['image'].numpy()
  assert out.shape == (4, 32, 32, 3)
  reference = np.asarray(data[0]['image']).reshape(32, 32, 3)
  np.testing.assert_allclose(out[0], reference, atol=1e-5)
  assert np.abs(out[1] - reference).mean() < 0.3  # JPEG is lossy on noise
  assert np.abs(out[2] - reference).mean() < 0.3  # resized back to 32x32
  with pytest.raises(tf.errors.InvalidArgumentError):
    layer({'image': tf.constant([[b'not an image at all']])})


def test_jpeg_pixels_are_those_pil_decodes(transformed):
  """The graph decodes a JPEG exactly as PIL does (the ImageValidator's and
  bench/accuracy_curve.py's decoder), so the two cannot drift."""
  from components.transform import decode_images
  images, _, _, _ = transformed
  encoded = [_jpeg(image) for image in images[:20]]
  expected = np.stack([np.asarray(Image.open(io.BytesIO(e))) for e in encoded])
  decoded = decode_images(tf.constant(encoded)).numpy()
  np.testing.assert_array_equal(np.round(decoded * 255).astype(np.uint8),
                                expected)


def test_channel_stats_read_back_from_the_graph(transformed):
  from components.trainers.export import channel_stats
  images, _, _, tft_output = transformed
  mean, std = channel_stats(tft_output)
  raw = images.astype(np.float64) / 255.0
  np.testing.assert_allclose(mean, raw.mean(axis=(0, 1, 2)), atol=1e-4)
  np.testing.assert_allclose(std, raw.std(axis=(0, 1, 2)), atol=1e-4)
  # bench/accuracy_curve.py normalises numpy arrays with the same statistics.
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / 'bench'))
  import curve_training
  bench_mean, bench_std = curve_training.channel_stats(images)
  np.testing.assert_allclose(bench_mean, mean, atol=1e-4)
  np.testing.assert_allclose(bench_std, std, atol=1e-4)


def test_the_trainer_loads_raw_examples_through_the_graph_as_transform_would(
    transformed, tmp_path):
  """Transform writes no examples: the Trainer reads ExampleGen's (gzipped
  tf.Examples, as it writes them) and applies the graph; what it caches is
  what TFT's own transform of the same records gives."""
  from components.trainers import data
  images, labels, expected, tft_output = transformed
  path = str(tmp_path / 'data_tfrecord-00000-of-00001.gz')
  with tf.io.TFRecordWriter(path, options='GZIP') as writer:
    for image, label in zip(images, labels):
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          'image': tf.train.Feature(bytes_list=tf.train.BytesList(
              value=[_png(image)])),
          'label': tf.train.Feature(int64_list=tf.train.Int64List(
              value=[int(label)])),
          'id': tf.train.Feature(bytes_list=tf.train.BytesList(value=[b'x'])),
      })).SerializeToString())
  examples = data.load_split(str(tmp_path), tft_output, 10)
  assert data.count(examples) == len(images)
  loaded = list(examples.as_numpy_iterator())
  np.testing.assert_allclose(
      np.stack([x for x, _ in loaded]),
      np.stack([np.asarray(row['image']).reshape(32, 32, 3) for row in expected]),
      atol=1e-6)
  assert [int(y.argmax()) for _, y in loaded] == list(labels)
  assert all(y.sum() == 1 for _, y in loaded)
