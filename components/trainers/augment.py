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


def _selection(offsets, length: int, mirrored=None):
  """[B, length, length] 0/1 rows: row i of image b picks source position
  offsets[b] + i, or offsets[b] + length - 1 - i where mirrored[b]; a position
  outside the image selects nothing, which is the zero padding."""
  indices = ops.arange(length, dtype='int32')  # output steps and source positions
  start, steps = ops.expand_dims(offsets, 1), ops.expand_dims(indices, 0)
  positions = start + steps
  if mirrored is not None:
    positions = ops.where(ops.expand_dims(mirrored, 1),
                          start + (length - 1) - steps, positions)
  return ops.cast(ops.equal(ops.expand_dims(positions, 2), indices), 'float32')


def alternating_flips(index, epoch, seed: int):
  """1 where the training image at `index` is mirrored in `epoch`, else 0.

  Airbench's alternating flip: each image is mirrored in every other epoch,
  so any two consecutive epochs show it both ways, where a coin per image and
  epoch shows half of the images the same way round in both. Which half of
  the split starts mirrored is a bit of a hash of (seed, index): a
  multiplicative hash, then the middle of its square (a linear hash alone
  gives every seed nearly the same pattern). Integer arithmetic alone, each
  product under 2**63, so NumPy arrays and TensorFlow int64 tensors give the
  same flips (the Trainer's tf.data batches and the benchmarks' NumPy ones).
  """
  start = (index * 2_654_435_761 + seed * 40_503) % 2**31
  square = (start * start // 2**16) % 2**31
  return (square // 2**30 + epoch) % 2


def random_crop_flip(images, seed, *, padding: int = 4, flip: bool = True,
                     rotation_degrees: float = 0.0):
  """Random crop after zero padding, random horizontal flip, optional rotation.

  The crop and the flip are two batched matrix products with 0/1 selection
  matrices (rows, then columns; the flip mirrors the column selection; a
  source position outside the image selects nothing, so no padded copy is
  made): exact in float32, and several times faster on a CPU than gathering
  pixels by index, while on an accelerator they are small matmuls.

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
  height, width, channels = images.shape[1], images.shape[2], images.shape[3]
  if not isinstance(seed, keras.random.SeedGenerator):
    seed = keras.random.SeedGenerator(seed)
  x = ops.cast(images, 'float32')
  if padding or flip:
    span = 2 * padding + 1
    dy = keras.random.randint((batch,), 0, span, dtype='int32', seed=seed)
    dx = keras.random.randint((batch,), 0, span, dtype='int32', seed=seed)
    mirrored = (keras.random.uniform((batch,), seed=seed) < 0.5) if flip else None
    if padding:
      rows = _selection(dy - padding, height)  # [B, H, H]
      x = ops.matmul(rows, ops.reshape(x, (-1, height, width * channels)))
    # Columns: move W in front of H (whole C-pixel runs stay together).
    x = ops.transpose(ops.reshape(x, (-1, height, width, channels)), (0, 2, 1, 3))
    cols = _selection(dx - padding, width, mirrored)  # [B, W, W]
    x = ops.matmul(cols, ops.reshape(x, (-1, width, height * channels)))
    x = ops.transpose(ops.reshape(x, (-1, width, height, channels)), (0, 2, 1, 3))
  if rotation_degrees:
    x = _rotate(x, rotation_degrees, seed)
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
