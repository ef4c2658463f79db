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
from components.image_header import JPEG_START, MAX_IMAGE_SIDE, MAX_PIXELS


def decode_images(encoded: tf.Tensor) -> tf.Tensor:
  """Decodes a batch of PNG/JPEG/GIF/BMP bytes to float32 [B, 32, 32, 3] in [0, 1].

  Grayscale and RGBA images are converted to RGB; an image of another size is
  resized (bilinear). Bytes that are not an image raise InvalidArgumentError,
  so a serving request carrying them fails instead of being classified; so
  does an image whose header declares more pixels than
  `components.image_header` allows, before anything is decoded. The PNG, GIF
  and BMP headers are read for the whole batch at once; a JPEG's SOFn marker
  can be anywhere, so its size is read per image, just before it is decoded.
  """
  encoded = tf.reshape(encoded, [-1])
  with tf.control_dependencies([_refuse_large(*_declared_size(encoded))]):
    encoded = tf.identity(encoded)
  is_jpeg = tf.equal(tf.strings.substr(encoded, 0, 3), JPEG_START)

  def decode_one(args) -> tf.Tensor:
    data, jpeg = args

    def from_jpeg() -> tf.Tensor:
      shape = tf.cast(tf.image.extract_jpeg_shape(data), tf.int64)
      with tf.control_dependencies([_refuse_large(shape[1], shape[0], 1)]):
        # The accurate integer IDCT, as PIL decodes (ExampleGen keeps JPEG
        # bytes; the ImageValidator and bench/accuracy_curve.py read them
        # with PIL): TensorFlow's default, the fast IDCT, was off by one
        # level on 65% of the values of the CIFAR-10 JPEGs.
        return tf.io.decode_jpeg(data, channels=CHANNELS,
                                 dct_method='INTEGER_ACCURATE')

    image = tf.cond(jpeg, from_jpeg, lambda: tf.io.decode_image(
        data, channels=CHANNELS, expand_animations=False))
    image = tf.image.convert_image_dtype(image, tf.float32)
    size = tf.shape(image)[:2]
    image = tf.cond(
        tf.reduce_all(tf.equal(size, IMAGE_SIZE)),
        lambda: image,
        lambda: tf.image.resize(image, [IMAGE_SIZE, IMAGE_SIZE], antialias=True))
    return tf.ensure_shape(image, [IMAGE_SIZE, IMAGE_SIZE, CHANNELS])

  return tf.map_fn(
      decode_one, (encoded, is_jpeg),
      fn_output_signature=tf.TensorSpec([IMAGE_SIZE, IMAGE_SIZE, CHANNELS],
                                        tf.float32))


def _refuse_large(width, height, frames) -> tf.Operation:
  """Fails the graph (InvalidArgumentError) if any declared size is too large."""
  small = tf.logical_and(
      tf.logical_and(width <= MAX_IMAGE_SIDE, height <= MAX_IMAGE_SIDE),
      width * height * frames <= MAX_PIXELS)
  return tf.debugging.Assert(tf.reduce_all(small), [
      f'the image header declares more than {MAX_IMAGE_SIDE}x'
      f'{MAX_IMAGE_SIDE} pixels (width, height, frames at most):', width,
      height, frames], name='image_size_check')


def _declared_size(encoded: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """(width, height, frames at most), int64 [B], that each PNG, GIF or BMP
  header of the batch declares, read as `components.image_header.declared_size`
  reads it; (0, 0, 1) for other bytes (JPEG's size is read by decode_images,
  and decode_image rejects what is no image)."""
  head = tf.strings.substr(tf.strings.join([encoded, tf.constant(b'\0' * 32)]),
                           0, 32)
  b = tf.cast(tf.io.decode_raw(head, tf.uint8), tf.int64)  # [B, 32]

  def unsigned(first: int, size: int, big: bool) -> tf.Tensor:
    order = range(size) if big else range(size - 1, -1, -1)
    value = tf.zeros_like(b[:, 0])
    for i in order:
      value = value * 256 + b[:, first + i]
    return value

  def signed32(first: int) -> tf.Tensor:
    value = unsigned(first, 4, False)
    return tf.abs(tf.where(value >= 2 ** 31, value - 2 ** 32, value))

  start3 = tf.strings.substr(encoded, 0, 3)
  png, gif = tf.equal(start3, b'\x89PN'), tf.equal(start3, b'GIF')
  bmp = tf.equal(tf.strings.substr(encoded, 0, 2), b'BM')
  zero = tf.zeros_like(b[:, 0])
  width = tf.where(png, unsigned(16, 4, True), tf.where(
      gif, unsigned(6, 2, False), tf.where(bmp, signed32(18), zero)))
  height = tf.where(png, unsigned(20, 4, True), tf.where(
      gif, unsigned(8, 2, False), tf.where(bmp, signed32(22), zero)))
  # Every GIF frame after the first starts with the bytes 00 2C.
  gif_pieces = tf.strings.split(tf.where(gif, encoded, b''), sep=b'\x00\x2c')
  frames = tf.where(gif, gif_pieces.row_lengths(), tf.ones_like(zero))
  return width, height, frames


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
