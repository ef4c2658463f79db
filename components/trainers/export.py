"""Exports a trained Keras model with the TFT graph as a serving SavedModel.

Called by `components.trainers.base` at the end of each Trainer run. The
exported `serving_default` signature takes serialized tf.Examples carrying the
encoded image (`image`: PNG or JPEG bytes, any size) and returns class
probabilities, the top class id and its name; with `mirror` the probabilities
are the mean of the image's and its left-right mirror's. Keras 3 cannot call
the TFT layer on a symbolic Keras input, so both live in a `tf.Module` and meet
inside a `tf.function` (see the field notes in the README). The serving graph is
float32 whatever the training policy (`float32_copy`): CPU serving and the
Evaluator then run float32 kernels, and the model holds no distributed
variables.
"""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf

from components.cifar10 import IMAGE_KEY
from components.trainers import predict

INFO_FILE = 'model_info.json'  # in <saved model>/assets.extra/


class ServingModule(tf.Module):
  """The model, its preprocessing and the class names, as one SavedModel."""

  def __init__(self, model, tft_output, class_names, mirror: bool = False):
    super().__init__()
    self.model = model
    self.mirror = mirror
    self.tft_layer = tft_output.transform_features_layer()
    self.class_names = tf.constant(list(class_names))
    raw_spec = tft_output.raw_feature_spec()
    self._raw_spec = {IMAGE_KEY: raw_spec[IMAGE_KEY]}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name='examples')])
  def serve_examples(self, examples):
    features = tf.io.parse_example(examples, self._raw_spec)
    transformed = self.tft_layer(features)
    # Keras 3 needs no AutoGraph; converting it took minutes in the Trainer's
    # process (where the TFX imports change what AutoGraph converts).
    model = tf.autograph.experimental.do_not_convert(self.model)
    probabilities = predict.probabilities(model, transformed[IMAGE_KEY],
                                          self.mirror)
    class_ids = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
    return {'probabilities': probabilities,
            'class_ids': class_ids,
            'classes': tf.gather(self.class_names, class_ids)}


def float32_copy(model, rebuild):
  """`rebuild()`'s model (the same builder as `model`'s) with the float32
  policy, holding `model`'s weights; called outside the strategy's scope, it
  holds plain variables.

  Mixed precision keeps variables in float32, so the weights carry over
  exactly; only the compute dtype changes. Leaves the global policy float32.
  """
  import keras
  keras.mixed_precision.set_global_policy('float32')
  copy = rebuild()
  copy.set_weights([np.asarray(w, np.float32) for w in model.get_weights()])
  return copy


def export(model, tft_output, class_names, directory: str, info: dict,
           mirror: bool = False) -> None:
  """Writes the SavedModel and `assets.extra/model_info.json` to `directory`."""
  module = ServingModule(model, tft_output, class_names, mirror)
  signatures = {'serving_default': module.serve_examples.get_concrete_function()}
  tf.saved_model.save(module, directory, signatures=signatures)
  extra = os.path.join(directory, 'assets.extra')
  tf.io.gfile.makedirs(extra)
  with tf.io.gfile.GFile(os.path.join(extra, INFO_FILE), 'w') as f:
    json.dump(info, f, indent=2, sort_keys=True)


def restore_weights(model, directory: str):
  """Loads into `model` the network weights of the SavedModel that `export`
  wrote to `directory` (its `ServingModule.model`) and returns `model`, which
  must come from the same builder and settings (any dtype policy: the export
  holds float32 copies). Called by bench/tta_accuracy.py, which measures a
  pipeline run's exported model under other views. Raises ValueError when the
  two networks do not match."""
  checkpoint = tf.train.Checkpoint(model=model)
  try:  # a shape differs: ValueError; a variable is missing: AssertionError
    status = checkpoint.read(os.path.join(directory, 'variables', 'variables'))
    status.assert_existing_objects_matched()
  except (AssertionError, ValueError) as error:
    raise ValueError(f'{directory} holds another network than the one built '
                     f'here ({str(error).splitlines()[0]}); build it with the '
                     'settings of the run that exported it') from None
  status.expect_partial()  # the TFT graph and class names stay unread
  return model


def channel_stats(tft_output) -> tuple[np.ndarray, np.ndarray]:
  """The per-channel mean and std (in [0,1] units) that the TFT graph applies.

  Reads them back from the graph by transforming an all-black and an
  all-white image: t(0) = -mean/std and t(1) = (1-mean)/std.
  """
  layer = tft_output.transform_features_layer()
  images = tf.stack([tf.zeros([32, 32, 3], tf.uint8),
                     tf.fill([32, 32, 3], tf.constant(255, tf.uint8))])
  encoded = tf.map_fn(tf.io.encode_png, images, fn_output_signature=tf.string)
  transformed = layer({IMAGE_KEY: tf.reshape(encoded, [2, 1])})[IMAGE_KEY]
  low = tf.reduce_mean(transformed[0], axis=[0, 1]).numpy()
  high = tf.reduce_mean(transformed[1], axis=[0, 1]).numpy()
  std = 1.0 / (high - low)
  return -low * std, std
