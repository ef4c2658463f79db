"""Training-time augmentation as batched, backend-neutral tensor ops.

Called by `components.trainers.base`, which puts a `BatchAugment` layer in
front of the model for training only (the exported model never contains it,
and it is the identity when `training` is false), and by the benchmarks.
Written with `keras.ops` and `keras.random` alone, so it runs under the
TensorFlow, JAX and PyTorch backends, inside the compiled train step, on the
accelerator when there is one.
"""

from __future__ import annotations

import math

import keras
from keras import ops


def _shifted_positions(offsets, length: int):
  """[B, length] indices: row i of image b reads offsets[b] + i."""
  return ops.expand_dims(offsets, 1) + ops.expand_dims(
      ops.arange(length, dtype='int32'), 0)


def random_crop_flip(images, seed, *, padding: int = 4, flip: bool = True,
                     rotation_degrees: float = 0.0):
  """Random crop after zero padding, random horizontal flip, optional rotation.

  Args:
    images: float [B, H, W, C].
    seed: a `keras.random.SeedGenerator` (each call draws fresh randomness
      from it) or an int (the same int gives the same augmentation).
    padding: px of zero padding on each side before the crop (0 = no crop).
    flip: flip each image left-right with probability 1/2.
    rotation_degrees: rotate each image by up to this many degrees (0 = off).

  Returns:
    Augmented images, same shape and dtype.
  """
  dtype = images.dtype
  batch = ops.shape(images)[0]
  height, width = images.shape[1], images.shape[2]
  if not isinstance(seed, keras.random.SeedGenerator):
    seed = keras.random.SeedGenerator(seed)
  seeds = [seed] * 4
  x = ops.cast(images, 'float32')
  if padding:
    padded = ops.pad(x, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
    dy = keras.random.randint((batch,), 0, 2 * padding + 1, dtype='int32',
                              seed=seeds[0])
    dx = keras.random.randint((batch,), 0, 2 * padding + 1, dtype='int32',
                              seed=seeds[1])
    channels = images.shape[3]
    rows = ops.reshape(_shifted_positions(dy, height), (-1, height, 1, 1))
    x = ops.take_along_axis(padded, ops.broadcast_to(
        rows, (batch, height, width + 2 * padding, channels)), axis=1)
    cols = ops.reshape(_shifted_positions(dx, width), (-1, 1, width, 1))
    x = ops.take_along_axis(x, ops.broadcast_to(
        cols, (batch, height, width, channels)), axis=2)
  if flip:
    coin = keras.random.uniform((batch, 1, 1, 1), seed=seeds[2])
    x = ops.where(coin < 0.5, ops.flip(x, axis=2), x)
  if rotation_degrees:
    x = _rotate(x, rotation_degrees, seeds[3])
  return ops.cast(x, dtype)


def _rotate(x, max_degrees: float, seed):
  """Rotates each image about its centre (bilinear via keras.ops.image)."""
  batch = ops.shape(x)[0]
  height, width = x.shape[1], x.shape[2]
  angle = keras.random.uniform((batch,), -1.0, 1.0, seed=seed) * (
      max_degrees * math.pi / 180.0)
  cos, sin = ops.cos(angle), ops.sin(angle)
  cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
  # Projective transform [a0, a1, a2, b0, b1, b2, c0, c1] mapping output
  # pixels to input pixels (the inverse rotation).
  a2 = cx - cos * cx + sin * cy
  b2 = cy - sin * cx - cos * cy
  zeros = ops.zeros_like(cos)
  transform = ops.stack([cos, -sin, a2, sin, cos, b2, zeros, zeros], axis=1)
  return ops.image.affine_transform(x, transform, interpolation='bilinear',
                                    fill_mode='constant')


class BatchAugment(keras.layers.Layer):
  """Random crop (zero padding), horizontal flip, optional small rotation.

  Active only when called with `training=True`; otherwise the identity.
  """

  def __init__(self, padding: int = 4, flip: bool = True,
               rotation_degrees: float = 0.0, seed: int | None = None, **kwargs):
    super().__init__(**kwargs)
    self.padding, self.flip = padding, flip
    self.rotation_degrees = rotation_degrees
    self.seed = seed
    self.seed_generator = keras.random.SeedGenerator(seed)

  def call(self, images, training=None):
    if not training:
      return images
    return random_crop_flip(images, self.seed_generator, padding=self.padding,
                            flip=self.flip,
                            rotation_degrees=self.rotation_degrees)

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    return {**super().get_config(), 'padding': self.padding, 'flip': self.flip,
            'rotation_degrees': self.rotation_degrees, 'seed': self.seed}
