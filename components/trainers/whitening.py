"""A first convolution that starts out whitening image patches (airbench).

Called by `components.trainers.base.run_fn` (inside TFX's Trainer) and by
`bench/accuracy_curve.py` when a model's `first_layer_init` is 'whitening':
after the builder returns the model, its first convolution's kernel is set
from the training images (the Trainer's, after Transform's normalisation),
then trains on from there. No TensorFlow: the benchmarks under JAX use it too.
"""

from __future__ import annotations

import keras
import numpy as np

from components.errors import UserError
from components.trainers import models

MAX_IMAGES = 50_000  # training images held for the sampling: 590 MiB at 32x32x3 float32
PATCH_SAMPLES = 200_000  # random patches whose covariance is taken
EPS = 5e-4  # added to each eigenvalue: caps the gain of near-empty directions


class CannotWhiten(UserError):
  """The model's first convolution cannot hold a whitening kernel."""


def whitening_kernel(images: np.ndarray, kernel: tuple[int, int, int, int],
                     *, samples: int = PATCH_SAMPLES, eps: float = EPS,
                     seed: int = 0) -> np.ndarray:
  """A first-layer kernel that whitens image patches (airbench's
  `init_whitening_conv`): the leading eigenvectors of the covariance of
  `samples` random patches of `images` (N, H, W, C), each scaled by
  1/sqrt(eigenvalue + eps), and their negatives. `kernel` is the layer's
  (height, width, channels, filters), filters even and at most twice the
  patch dimension; a channels-last Keras kernel comes back."""
  height, width, channels, filters = kernel
  dim = height * width * channels
  if filters % 2 or filters > 2 * dim:
    raise ValueError(f'{filters} filters cannot pair the {dim} patch directions.')
  rng = np.random.default_rng(seed)
  n, rows, cols = images.shape[:3]
  index = rng.integers(0, n, samples)
  top = rng.integers(0, rows - height + 1, samples)
  left = rng.integers(0, cols - width + 1, samples)
  patches = np.stack([images[index, top + i, left + j]
                      for i in range(height) for j in range(width)], axis=1)
  flat = patches.reshape(samples, dim).astype('float64')  # (i, j, channel) order
  values, vectors = np.linalg.eigh(flat.T @ flat / samples)
  order = np.argsort(values)[::-1][:filters // 2]
  scaled = vectors[:, order] / np.sqrt(values[order] + eps)
  both = np.concatenate([scaled, -scaled], axis=1)  # (dim, filters)
  return both.reshape(height, width, channels, filters).astype('float32')


def first_convolution(model: keras.Model) -> keras.layers.Conv2D:
  """The first Conv2D of `model` in its layer order (nested models searched)."""
  for layer in models.layers_in_order(model):
    if isinstance(layer, keras.layers.Conv2D):
      return layer
  raise CannotWhiten(f'{model.name} has no 2-D convolution to whiten: set '
                     'first_layer_init=random for this model.')


def as_seen_by(layer: keras.layers.Layer, images: np.ndarray) -> np.ndarray:
  """`images` resized (bilinear, as keras.layers.Resizing) to the side
  `layer` takes, when the model upsamples its inputs before it (`input_size`);
  no more of them than MAX_IMAGES hold in 32x32 pixels."""
  rows, cols = (int(d) for d in layer.input.shape[1:3])
  if images.shape[1:3] == (rows, cols):
    return images
  images = images[:max(1, MAX_IMAGES * 32 * 32 // (rows * cols))]
  return np.concatenate([
      keras.ops.convert_to_numpy(keras.ops.image.resize(
          images[start:start + 1000], (rows, cols), interpolation='bilinear'))
      for start in range(0, len(images), 1000)])


def whiten_first_convolution(model: keras.Model, images: np.ndarray, *,
                             seed: int) -> str:
  """Sets the first convolution's kernel to whiten patches of `images`
  (normalised, as the model's input takes them; resized to the layer's side
  when the model upsamples them); returns the layer's name."""
  layer = first_convolution(model)
  shape = tuple(int(d) for d in layer.kernel.shape)
  images = as_seen_by(layer, images)
  try:
    kernel = whitening_kernel(images, shape, seed=seed)
  except ValueError as error:
    raise CannotWhiten(
        f'{model.name}: {layer.name} ({shape[0]}x{shape[1]}x{shape[2]}, '
        f'{shape[3]} filters) cannot start whitening: {error} Set '
        'first_layer_init=random for this model.') from None
  layer.kernel.assign(kernel)
  return layer.name
