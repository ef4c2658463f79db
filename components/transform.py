"""The TensorFlow Transform preprocessing of CIFAR-10 images.

Called by TFX's Transform component (as the dotted path
`components.transform.preprocessing_fn`, set in
`pipeline.create.create_pipeline`) and, through the transform graph it
produces, by every exported model: the same decode-and-normalise runs at
training, evaluation and serving time.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from components.cifar10 import CHANNELS, IMAGE_KEY, IMAGE_SIZE, LABEL_KEY


def decode_images(encoded: tf.Tensor) -> tf.Tensor:
  """Decodes a batch of PNG/JPEG/GIF/BMP bytes to float32 [B, 32, 32, 3] in [0, 1].

  Grayscale and RGBA images are converted to RGB; an image of another size is
  resized (bilinear). Bytes that are not an image raise InvalidArgumentError,
  so a serving request carrying them fails instead of being classified.
  """
  encoded = tf.reshape(encoded, [-1])

  def decode_one(data: tf.Tensor) -> tf.Tensor:
    image = tf.io.decode_image(data, channels=CHANNELS, expand_animations=False)
    image = tf.image.convert_image_dtype(image, tf.float32)
    size = tf.shape(image)[:2]
    image = tf.cond(
        tf.reduce_all(tf.equal(size, IMAGE_SIZE)),
        lambda: image,
        lambda: tf.image.resize(image, [IMAGE_SIZE, IMAGE_SIZE], antialias=True))
    return tf.ensure_shape(image, [IMAGE_SIZE, IMAGE_SIZE, CHANNELS])

  return tf.map_fn(
      decode_one, encoded,
      fn_output_signature=tf.TensorSpec([IMAGE_SIZE, IMAGE_SIZE, CHANNELS],
                                        tf.float32))


def preprocessing_fn(inputs, custom_config=None):
  """Decodes images and normalises them per channel.

  The per-channel mean and standard deviation are TFT analyzers, computed over
  the split the Transform component analyses (train only), and baked into the
  transform graph as constants.

  Args:
    inputs: raw features: `image` (encoded bytes) and, except at serving time,
      `label` (int64).
    custom_config: unused; it carries a code fingerprint so that an edit of
      this module or one it imports invalidates the Transform's cache.

  Returns:
    `image`: float32 [B, 32, 32, 3], mean 0 and std 1 per channel on train;
    `label`: int64 [B], when given.
  """
  del custom_config
  images = decode_images(inputs[IMAGE_KEY])
  per_image_mean = tf.reduce_mean(images, axis=[1, 2])  # [B, 3]
  per_image_square = tf.reduce_mean(tf.square(images), axis=[1, 2])
  mean = tft.mean(per_image_mean, reduce_instance_dims=False)  # [3]
  mean_square = tft.mean(per_image_square, reduce_instance_dims=False)
  std = tf.sqrt(tf.maximum(mean_square - tf.square(mean), 1e-12))
  outputs = {IMAGE_KEY: (images - mean) / std}
  if LABEL_KEY in inputs:
    label = inputs[LABEL_KEY]
    if isinstance(label, tf.SparseTensor):
      label = tf.sparse.to_dense(label)
    outputs[LABEL_KEY] = tf.reshape(label, [-1])
  return outputs
