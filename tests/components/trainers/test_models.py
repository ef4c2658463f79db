"""Tests of components.trainers.models: shapes, exact sizes, preprocessing,
weights files of both formats, and the tf.Module export path (where the
weights come from: test_vgg16_weights.py).

Run by pytest (`pytest tests/components/trainers`); never touches the network.
"""

from __future__ import annotations

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.legacy.saving import legacy_h5_format

from components.trainers import models, vgg16_weights

ALEXNET_ORDER = [
    'image', 'conv1', 'bn1', 'relu1', 'pool1', 'conv2', 'bn2', 'relu2', 'pool2',
    'conv3', 'bn3', 'relu3', 'conv4', 'bn4', 'relu4', 'conv5', 'bn5', 'relu5',
    'pool3', 'flatten', 'fc6', 'bn6', 'relu6', 'dropout6', 'fc7', 'bn7', 'relu7',
    'dropout7', 'logits', 'predictions']


def _images(n: int = 4, seed: int = 0) -> np.ndarray:
  return np.random.default_rng(seed).normal(size=(n, 32, 32, 3)).astype('float32')


@pytest.fixture
def mixed_bfloat16():
  keras.mixed_precision.set_global_policy('mixed_bfloat16')
  try:
    yield
  finally:
    keras.mixed_precision.set_global_policy('float32')


# --- AlexNet -------------------------------------------------------------------

def test_alexnet_output_is_a_distribution_per_image():
  probs = np.asarray(models.build_alexnet()(_images(3), training=False))
  assert probs.shape == (3, 10)
  assert np.all(probs >= 0)
  np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_alexnet_parameter_count_matches_hand_derivation():
  bn = lambda channels: 4 * channels  # gamma, beta, moving mean and variance
  convs = (5 * 5 * 3 * 96 + bn(96)           # conv1, no bias (BN follows)
           + 5 * 5 * 96 * 256 + bn(256)      # conv2
           + 3 * 3 * 256 * 384 + bn(384)     # conv3
           + 3 * 3 * 384 * 384 + bn(384)     # conv4
           + 3 * 3 * 384 * 256 + bn(256))    # conv5
  flat = 4 * 4 * 256  # 32 px after three 2x2 pools
  dense = (flat * 4096 + bn(4096)            # fc6, no bias
           + 4096 * 4096 + bn(4096)          # fc7, no bias
           + 4096 * 10 + 10)                 # logits, with bias
  assert convs + dense == 37_351_850
  assert models.build_alexnet().count_params() == convs + dense


def test_alexnet_layer_sequence():
  model = models.build_alexnet()
  assert model.name == 'alexnet'
  assert [layer.name for layer in model.layers] == ALEXNET_ORDER
  convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
  assert [c.filters for c in convs] == [96, 256, 384, 384, 256]
  assert [c.kernel_size for c in convs] == [(5, 5), (5, 5), (3, 3), (3, 3), (3, 3)]
  assert all(c.padding == 'same' and not c.use_bias for c in convs)
  pools = [l for l in model.layers if isinstance(l, keras.layers.MaxPooling2D)]
  assert [p.pool_size for p in pools] == [(2, 2)] * 3
  dense = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
  assert [d.units for d in dense] == [4096, 4096, 10]
  assert [l.rate for l in model.layers if isinstance(l, keras.layers.Dropout)] \
      == [0.5, 0.5]
  assert models.build_alexnet(num_classes=7, dropout=0.2).output_shape == (None, 7)


def test_alexnet_upsamples_its_images_when_asked():
  """`input_size` 48: 32-px images in, the same layers after a bilinear
  `resize`, fc6 taking 6x6x256 inputs; the upsampling is Keras's Resizing."""
  model = models.build_alexnet(input_size=48)
  assert model.input_shape == (None, 32, 32, 3)
  assert [layer.name for layer in model.layers] == (
      ALEXNET_ORDER[:1] + ['resize'] + ALEXNET_ORDER[1:])
  assert model.get_layer('conv1').input.shape[1:] == (48, 48, 3)
  assert model.get_layer('fc6').kernel.shape == (6 * 6 * 256, 4096)
  images = _images(2)
  conv1_in = keras.Model(model.input, model.get_layer('resize').output)
  np.testing.assert_allclose(
      np.asarray(conv1_in(images)),
      np.asarray(keras.ops.image.resize(images, (48, 48), interpolation='bilinear')),
      atol=1e-6)
  assert np.asarray(model(images, training=False)).shape == (2, 10)
  assert 'resize' not in [l.name for l in models.build_alexnet(input_size=32).layers]


@pytest.mark.parametrize('name', ['alexnet', 'vgg16'])
def test_softmax_is_float32_under_mixed_precision(mixed_bfloat16, name):
  if name == 'alexnet':
    model = models.build_alexnet()
    first_conv = model.get_layer('conv1')
  else:
    model = models.build_vgg16(input_size=64)
    first_conv = model.get_layer('vgg16').get_layer('block1_conv1')
  assert first_conv.compute_dtype == 'bfloat16'  # the policy did apply
  probs = model(_images(2), training=False)
  assert keras.backend.standardize_dtype(probs.dtype) == 'float32'
  np.testing.assert_allclose(np.asarray(probs).sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize('build, kwargs', [
    (models.build_alexnet, {'num_classes': 1}), (models.build_alexnet, {'dropout': 1.0}),
    (models.build_alexnet, {'input_shape': (4, 4, 3)}),
    (models.build_alexnet, {'input_shape': (32, 32, 1)}),
    (models.build_alexnet, {'input_size': 44}), (models.build_alexnet, {'input_size': 24}),
    (models.build_alexnet, {'input_size': 136}),
    (models.build_alexnet, {'input_shape': (32, 40, 3), 'input_size': 48}),
    (models.build_vgg16, {'input_size': 48}), (models.build_vgg16, {'input_size': 0}),
    (models.build_vgg16, {'input_size': 16}), (models.build_vgg16, {'num_classes': 1}),
    (models.build_vgg16, {'pixel_std': (0.2, 0.2)})])
def test_builders_reject_bad_arguments(build, kwargs):
  with pytest.raises(ValueError):
    build(**kwargs)


# --- VGG16 ---------------------------------------------------------------------

@pytest.mark.parametrize('size', [32, 64])
def test_vgg16_shapes_and_sizes(size):
  model = models.build_vgg16(input_size=size)
  base = model.get_layer('vgg16')
  assert base.input_shape == (None, size, size, 3)
  assert model.input_shape == (None, 32, 32, 3)
  assert np.asarray(model(_images(2), training=False)).shape == (2, 10)
  convs = [l for l in base.layers if isinstance(l, keras.layers.Conv2D)]
  assert len(convs) == 13
  widths = [64] * 2 + [128] * 2 + [256] * 3 + [512] * 6
  derived = sum((3 * 3 * cin + 1) * cout
                for cin, cout in zip([3] + widths[:-1], widths))
  assert base.count_params() == derived == 14_714_688
  assert model.count_params() == 14_714_688 + 512 * 10 + 10
  assert ('resize' in [l.name for l in model.layers]) == (size != 32)


def test_vgg16_base_runs_in_inference_mode():
  model = models.build_vgg16()
  assert model.get_layer('vgg16')._inbound_nodes[0].arguments.kwargs['training'] \
      is False


def test_vgg16_preprocessing_matches_keras_caffe_preprocess_input():
  raw = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3)).astype('float32')
  raw[0, 0, 0] = (255.0, 0.0, 10.0)  # a known pixel: pure-ish red
  mean, std = np.array(models.CIFAR10_MEAN), np.array(models.CIFAR10_STD)
  normalised = ((raw / 255.0 - mean) / std).astype('float32')
  model = models.build_vgg16()
  pre = keras.Model(model.input, model.get_layer('vgg_preprocess').output)
  got = np.asarray(pre(normalised))
  want = keras.applications.vgg16.preprocess_input(raw.copy())
  np.testing.assert_allclose(got, want, atol=2e-3)
  np.testing.assert_allclose(got[0, 0, 0], [10 - 103.939, 0 - 116.779, 255 - 123.68],
                             atol=2e-3)


def test_vgg16_missing_weights_file_raises(tmp_path):
  with pytest.raises(vgg16_weights.WeightsUnavailable, match='nowhere.h5'):
    models.build_vgg16(weights_path=str(tmp_path / 'nowhere.h5'))


def test_vgg16_loads_keras3_and_legacy_h5_weights(tmp_path):
  base = keras.applications.VGG16(include_top=False, weights=None,
                                  input_shape=(32, 32, 3))
  rng = np.random.default_rng(2)
  known = [rng.normal(size=w.shape).astype('float32') for w in base.get_weights()]
  base.set_weights(known)
  keras3 = str(tmp_path / 'base.weights.h5')
  base.save_weights(keras3)
  legacy = str(tmp_path / vgg16_weights.VGG16_NOTOP_FILE)  # the official file's format
  with h5py.File(legacy, 'w') as f:
    legacy_h5_format.save_weights_to_hdf5_group(f, base)
  for path in (keras3, legacy):
    loaded = models.build_vgg16(weights_path=path).get_layer('vgg16').get_weights()
    assert len(loaded) == len(known) == 26
    for got, want in zip(loaded, known):
      np.testing.assert_array_equal(got, want)


# --- export ---------------------------------------------------------------------

class _Exporter(tf.Module):
  """What the trainers export: a tf.Module with a serving signature."""

  def __init__(self, model: keras.Model):
    super().__init__()
    self.model = model

  @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32)])
  def serve(self, images):
    return {'probabilities': self.model(images, training=False)}


@pytest.mark.parametrize('build', [models.build_alexnet, models.build_vgg16],
                         ids=['alexnet', 'vgg16'])
def test_saved_model_export_round_trip(tmp_path, build):
  model, images = build(), _images(3)
  want = np.asarray(model(images, training=False))
  tf.saved_model.save(_Exporter(model), str(tmp_path / 'export'))
  loaded = tf.saved_model.load(str(tmp_path / 'export'))  # keep it referenced
  got = loaded.serve(tf.constant(images))
  np.testing.assert_allclose(got['probabilities'].numpy(), want, atol=1e-5)


def test_vgg16_keras_file_round_trip(tmp_path):
  model, images = models.build_vgg16(num_classes=3), _images(2)
  model.save(tmp_path / 'vgg.keras')
  loaded = keras.models.load_model(tmp_path / 'vgg.keras')
  assert isinstance(loaded.get_layer('vgg_preprocess'), models.VGGPreprocessing)
  np.testing.assert_allclose(np.asarray(loaded(images, training=False)),
                             np.asarray(model(images, training=False)), atol=1e-6)
