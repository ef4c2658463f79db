"""The serving SavedModel that `components.trainers.export` writes, loaded
back and called as TF Serving and the Evaluator call it: on serialized
tf.Examples. The TFT graph is stood in for by a small decoder (the real one
is exercised by the local-run tests); what is checked here is what the export
adds around the network."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from components.cifar10 import CLASS_NAMES, IMAGE_KEY
from components.trainers import export


class _Decoder(tf.Module):
  """What the TFT layer does to the image, in [0, 1] units."""

  def __call__(self, features):
    images = tf.map_fn(lambda b: tf.io.decode_png(b, channels=3), features[IMAGE_KEY],
                       fn_output_signature=tf.TensorSpec([32, 32, 3], tf.uint8))
    return {IMAGE_KEY: tf.cast(images, tf.float32) / 255.0}


class _TftOutput:
  def transform_features_layer(self):
    return _Decoder()

  def raw_feature_spec(self):
    return {IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
            'label': tf.io.FixedLenFeature([], tf.int64)}  # not in requests


def _model(seed: int = 3):
  """A network that tells an image from its mirror (a dense layer on pixels)."""
  import keras
  keras.utils.set_random_seed(seed)
  inputs = keras.Input((32, 32, 3))
  x = keras.layers.Flatten()(inputs)
  outputs = keras.layers.Dense(len(CLASS_NAMES), activation='softmax')(x)
  return keras.Model(inputs, outputs)


def _examples(images: np.ndarray) -> list[bytes]:
  return [tf.train.Example(features=tf.train.Features(feature={
      IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[tf.io.encode_png(image).numpy()]))})).SerializeToString()
          for image in images]


@pytest.mark.parametrize('mirror', [False, True])
def test_the_served_probabilities_are_the_network_s_or_the_mirror_mean(
    tmp_path, mirror):
  images = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), np.uint8)
  model = _model()
  export.export(model, _TftOutput(), CLASS_NAMES, str(tmp_path / 'm'),
                {'model_name': 'test'}, mirror=mirror)
  serve = tf.saved_model.load(str(tmp_path / 'm')).signatures['serving_default']
  out = serve(examples=tf.constant(_examples(images)))

  x = images.astype(np.float32) / 255.0
  plain = np.asarray(model(x, training=False))
  flipped = np.asarray(model(x[:, :, ::-1], training=False))
  expected = (plain + flipped) / 2 if mirror else plain
  assert not np.allclose(plain, flipped, atol=1e-3)  # the check can tell them apart
  np.testing.assert_allclose(out['probabilities'].numpy(), expected, atol=1e-5)
  np.testing.assert_allclose(out['probabilities'].numpy().sum(axis=1), 1, atol=1e-5)
  ids = expected.argmax(axis=1)
  np.testing.assert_array_equal(out['class_ids'].numpy(), ids)
  assert [c.decode() for c in out['classes'].numpy()] == [CLASS_NAMES[i] for i in ids]


def test_restore_weights_reads_back_the_exported_network(tmp_path):
  model = _model()
  export.export(model, _TftOutput(), CLASS_NAMES, str(tmp_path / 'm'), {})
  fresh = _model(seed=4)
  assert not np.allclose(fresh.get_weights()[0], model.get_weights()[0])
  assert export.restore_weights(fresh, str(tmp_path / 'm')) is fresh
  for got, want in zip(fresh.get_weights(), model.get_weights()):
    np.testing.assert_array_equal(got, want)


def test_restore_weights_refuses_another_network(tmp_path):
  import keras
  export.export(_model(), _TftOutput(), CLASS_NAMES, str(tmp_path / 'm'), {})
  inputs = keras.Input((32, 32, 3))
  other = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(7)(
      keras.layers.Flatten()(inputs))))
  with pytest.raises(ValueError, match='holds another network than the one built here'):
    export.restore_weights(other, str(tmp_path / 'm'))
