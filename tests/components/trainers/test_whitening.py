"""The first convolution that starts whitening patches (`first_layer_init`)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from components.trainers import data, models, whitening


def _smooth_images(n: int, seed: int = 0) -> np.ndarray:
  """Images with correlated channels and neighbouring pixels, as photos have."""
  rng = np.random.default_rng(seed)
  noise = rng.normal(size=(n, 34, 34, 3)) @ rng.normal(size=(3, 3))
  return (noise[:, :-2, :-2] + noise[:, 1:-1, 1:-1] + noise[:, 2:, 2:])[:, :32, :32]


def test_the_whitening_kernel_whitens_the_patches_it_keeps():
  """A conv layer with the kernel maps patches of the images to outputs whose
  first half is uncorrelated with unit variance (up to eps); the second half
  is its negative."""
  images = _smooth_images(400)
  kernel = whitening.whitening_kernel(images, (5, 5, 3, 40), samples=50_000,
                                      eps=1e-9)
  assert kernel.shape == (5, 5, 3, 40)
  np.testing.assert_allclose(kernel[..., 20:], -kernel[..., :20])
  patches = np.stack([images[:, i:i + 5, j:j + 5].reshape(-1, 75)
                      for i in range(0, 27, 3) for j in range(0, 27, 3)])
  out = patches.reshape(-1, 75) @ kernel.reshape(75, 40)[:, :20]
  covariance = np.cov(out, rowvar=False)
  np.testing.assert_allclose(covariance, np.eye(20), atol=0.06)
  with pytest.raises(ValueError, match='cannot pair'):
    whitening.whitening_kernel(images, (5, 5, 3, 152))


def test_alexnets_conv1_whitens_the_images_it_was_set_from():
  """Through the model's own conv1 (5x5, 96 filters, no bias): inside the
  image, the first 48 channels are uncorrelated with variance near 1."""
  images = _smooth_images(300, seed=1).astype('float32')
  model = models.build_alexnet()
  assert whitening.whiten_first_convolution(model, images, seed=3) == 'conv1'
  conv1 = keras.Model(model.input, model.get_layer('conv1').output)
  out = np.asarray(conv1(images[:100]))[:, 2:-2:3, 2:-2:3, :48].reshape(-1, 48)
  np.testing.assert_allclose(np.cov(out, rowvar=False), np.eye(48), atol=0.1)
  np.testing.assert_allclose(np.asarray(model.get_layer('conv1').kernel),
                             whitening.whitening_kernel(images, (5, 5, 3, 96), seed=3))


def test_an_upsampling_alexnet_whitens_the_images_as_conv1_sees_them():
  """With `input_size` 48 the kernel comes from the images after the model's
  own `resize` (bilinear): through conv1, the first 48 channels of upsampled
  images are uncorrelated with variance near 1; a kernel taken from the
  32-px patches is not the one set."""
  images = _smooth_images(300, seed=1).astype('float32')
  model = models.build_alexnet(input_size=48)
  whitening.whiten_first_convolution(model, images, seed=3)
  conv1 = keras.Model(model.input, model.get_layer('conv1').output)
  # every position: the upsampled patches' statistics vary with their phase
  out = np.asarray(conv1(images[:100]))[:, 2:-2, 2:-2, :48].reshape(-1, 48)
  np.testing.assert_allclose(np.cov(out, rowvar=False), np.eye(48), atol=0.1)
  small = whitening.whitening_kernel(images, (5, 5, 3, 96), seed=3)
  assert not np.allclose(np.asarray(model.get_layer('conv1').kernel), small, atol=0.1)


def test_upsampled_images_for_whitening_are_bounded_in_memory(monkeypatch):
  """No more images are resized than MAX_IMAGES hold at 32x32."""
  monkeypatch.setattr(whitening, 'MAX_IMAGES', 90)
  layer = whitening.first_convolution(models.build_alexnet(input_size=96))
  seen = whitening.as_seen_by(layer, _smooth_images(40).astype('float32'))
  assert seen.shape == (10, 96, 96, 3)  # 90 * 32^2 / 96^2


def test_the_first_convolution_is_found_inside_nested_models():
  inner = keras.Sequential([keras.Input((32, 32, 3)),
                            keras.layers.Conv2D(8, 3, name='inner_conv')])
  outer = keras.Sequential([keras.Input((32, 32, 3)), inner,
                            keras.layers.Conv2D(4, 3, name='later_conv')])
  assert whitening.first_convolution(outer).name == 'inner_conv'


@pytest.mark.parametrize('layer, message', [
    (lambda: keras.layers.Dense(4), 'small has no 2-D convolution to whiten'),
    (lambda: keras.layers.Conv2D(64, 3, name='conv'), r'conv \(3x3x3, 64 '
     'filters\) cannot start whitening: 64 filters cannot pair the 27 patch'),
])
def test_a_model_that_cannot_be_whitened_is_named(layer, message):
  model = keras.Sequential([keras.Input((32, 32, 3)), layer()], name='small')
  with pytest.raises(whitening.CannotWhiten, match=message) as error:
    whitening.whiten_first_convolution(model, _smooth_images(4), seed=0)
  assert str(error.value).endswith('first_layer_init=random for this model.')


def test_the_trainer_samples_the_first_images_of_its_split():
  x = np.arange(10 * 2 * 2 * 3, dtype='float32').reshape(10, 2, 2, 3)
  split = tf.data.Dataset.from_tensor_slices((x, np.eye(10, dtype='float32')))
  np.testing.assert_array_equal(data.images(split, 4), x[:4])
  np.testing.assert_array_equal(data.images(split, 50), x)
