"""The two CIFAR-10 networks.

Called by the trainer modules (`components.trainers.alexnet` and `.vgg16`,
whose `run_fn` the TFX Trainer runs), by `whitening` and `device` (which
walk a built model's layers) and by the tests. The builders are pure
functions returning a Keras 3 model; they use only `keras.layers`/`keras.ops`,
so they build under any Keras backend. Images are channels-last.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras
from keras import layers, ops

from components.trainers import sizes
from components.trainers.vgg16_weights import WeightsUnavailable

IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)  # caffe-style preprocessing
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)  # RGB, in [0, 1] units
CIFAR10_STD = (0.247, 0.243, 0.261)
# Moving statistics follow the batches faster than Keras's 0.99 (PyTorch's
# default): ~175 steps an epoch at batch 256, and a quick run has only tens.
BN_MOMENTUM = 0.9


def layers_in_order(model: keras.Model):
  """Every layer of `model` in its layer order, nested models' layers after
  the nested model itself (the whitened conv1 and the replicas' BatchNorm
  are found this way)."""
  for layer in getattr(model, 'layers', ()):
    yield layer
    yield from layers_in_order(layer)


def _check(ok: bool, message: str) -> None:
  if not ok:
    raise ValueError(message)


def _check_common(num_classes: int, dropout: float) -> None:
  _check(isinstance(num_classes, int) and num_classes >= 2,
         f'num_classes must be an integer >= 2, got {num_classes!r}.')
  _check(0.0 <= dropout < 1.0, f'dropout must be in [0, 1), got {dropout!r}.')
  _check(keras.config.image_data_format() == 'channels_last',
         'The models need keras.config.image_data_format() == "channels_last".')


def _classifier(x, num_classes: int):
  """Dense logits, then a softmax that computes in float32 (mixed precision)."""
  x = layers.Dense(num_classes, name='logits')(x)
  return layers.Activation('softmax', dtype='float32', name='predictions')(x)


def _resized(x, input_size: int | None):
  """`x` (square images) as the first convolution sees them: through a
  bilinear `resize` layer when input_size is another side, else as it is."""
  if input_size in (None, x.shape[1]):
    return x
  return layers.Resizing(input_size, input_size, interpolation='bilinear',
                         name='resize')(x)


def build_alexnet(*, num_classes: int = 10, input_shape=(32, 32, 3),
                  dropout: float = 0.5, input_size: int | None = None) -> keras.Model:
  """AlexNet of the reference study, adapted to 32x32 CIFAR-10 images.

  [`resize` (bilinear, only when input_size differs from the images' side)]
  - conv1 96 5x5 - pool1 - conv2 256 5x5 - pool2 - conv3 384 3x3 - conv4 384 3x3
  - conv5 256 3x3 - pool3 - flatten - fc6 4096 - fc7 4096 - logits - predictions.
  Convolutions use 'same' padding; pools are 2x2 max-pools, stride 2.
  Each conv and hidden dense layer is `Conv/Dense (no bias) -> BN -> ReLU`
  (layers convN/bnN/reluN, fc6/bn6/relu6, fc7/bn7/relu7). Dropout sits where
  the original AlexNet has it, on the outputs of the hidden dense layers
  (dropout6 after relu6 feeds fc7, dropout7 after relu7 feeds the classifier),
  never between a layer and its BN, so BN statistics stay those of the
  undropped activations. `logits` (Dense, with bias) is followed by the
  float32 softmax `predictions`.

  Args:
    num_classes: outputs of the classifier, >= 2.
    input_shape: (height, width, 3); each side >= 8 (three 2x2 pools).
    dropout: rate of dropout6 and dropout7, in [0, 1).
    input_size: side in px the first convolution sees (square images
      upsampled by the model's `resize` layer); as `sizes.ALEXNET` allows
      (multiples of 8 from 32 to 128), at least the images' side. None = the
      images' own size. The layers are the same; fc6's inputs grow with the
      square of the side ((input_size / 8)^2 x 256) and the compute with
      about that too.

  Returns:
    A Keras model named 'alexnet' mapping per-channel normalised float images
    (mean 0, std 1) to class probabilities (float32).
  """
  _check_common(num_classes, dropout)
  input_shape = tuple(input_shape)
  _check(len(input_shape) == 3 and input_shape[-1] == 3
         and all(isinstance(s, int) and s >= 8 for s in input_shape[:2]),
         f'input_shape must be (height, width, 3) with sides >= 8, '
         f'got {input_shape!r}.')
  side_problem = input_size and sizes.problem(sizes.ALEXNET, input_size)
  _check(not side_problem, f'input_size {side_problem}')
  _check(input_size is None or input_shape[0] == input_shape[1] <= input_size,
         f'input_size needs square images no larger than it, got '
         f'{input_shape!r} and {input_size!r}.')

  def conv_bn_relu(x, index: int, filters: int, kernel: int):
    x = layers.Conv2D(filters, kernel, padding='same', use_bias=False,
                      kernel_initializer='he_normal', name=f'conv{index}')(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f'bn{index}')(x)
    return layers.ReLU(name=f'relu{index}')(x)

  def dense_bn_relu(x, index: int):
    x = layers.Dense(4096, use_bias=False, kernel_initializer='he_normal',
                     name=f'fc{index}')(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f'bn{index}')(x)
    x = layers.ReLU(name=f'relu{index}')(x)
    return layers.Dropout(dropout, name=f'dropout{index}')(x)

  inputs = keras.Input(shape=input_shape, name='image')
  x = conv_bn_relu(_resized(inputs, input_size), 1, 96, 5)
  x = layers.MaxPooling2D(2, name='pool1')(x)
  x = conv_bn_relu(x, 2, 256, 5)
  x = layers.MaxPooling2D(2, name='pool2')(x)
  x = conv_bn_relu(x, 3, 384, 3)
  x = conv_bn_relu(x, 4, 384, 3)
  x = conv_bn_relu(x, 5, 256, 3)
  x = layers.MaxPooling2D(2, name='pool3')(x)
  x = layers.Flatten(name='flatten')(x)
  x = dense_bn_relu(x, 6)
  x = dense_bn_relu(x, 7)
  return keras.Model(inputs, _classifier(x, num_classes), name='alexnet')


@keras.saving.register_keras_serializable(package='cifar10_tfx')
class VGGPreprocessing(layers.Layer):
  """Per-channel normalised RGB in [0, 1] units -> VGG16's caffe-style input.

  Computes `(x * std + mean) * 255`, reverses RGB to BGR and subtracts the
  ImageNet BGR means, exactly as `keras.applications.vgg16.preprocess_input`
  does on a 0-255 RGB image. No weights; the constants live in the config.
  """

  def __init__(self, pixel_mean: Sequence[float] = CIFAR10_MEAN,
               pixel_std: Sequence[float] = CIFAR10_STD, **kwargs):
    super().__init__(**kwargs)
    self.pixel_mean = tuple(float(v) for v in pixel_mean)
    self.pixel_std = tuple(float(v) for v in pixel_std)
    # After the flip, BGR channel c is RGB channel 2 - c: one affine map.
    self._scale = tuple(255.0 * s for s in reversed(self.pixel_std))
    self._offset = tuple(255.0 * m - b for m, b in
                         zip(reversed(self.pixel_mean), IMAGENET_BGR_MEAN))

  def call(self, inputs):
    x = ops.cast(ops.flip(inputs, axis=-1), self.compute_dtype)
    scale = ops.convert_to_tensor(self._scale, dtype=self.compute_dtype)
    return x * scale + ops.convert_to_tensor(self._offset, dtype=self.compute_dtype)

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    return {**super().get_config(), 'pixel_mean': list(self.pixel_mean),
            'pixel_std': list(self.pixel_std)}


def build_vgg16(*, num_classes: int = 10, input_size: int = 32,
                weights_path: str | None = None, dropout: float = 0.3,
                pixel_mean=CIFAR10_MEAN, pixel_std=CIFAR10_STD) -> keras.Model:
  """VGG16's convolutional base (ImageNet-ready) with a small CIFAR-10 head.

  image (32x32x3, normalised with pixel_mean/pixel_std) -> `vgg_preprocess`
  (VGGPreprocessing: back to 0-255, RGB->BGR, minus ImageNet BGR means) ->
  `resize` (bilinear, only when input_size != 32) -> `vgg16` (the
  keras.applications base without top, always called with training=False) ->
  `avg_pool` (global average) -> `head_dropout` -> `logits` -> `predictions`
  (float32 softmax). The head's size does not depend on input_size.

  Args:
    num_classes: outputs of the classifier, >= 2.
    input_size: side in px the base sees; as `sizes.VGG16` allows (multiples
      of 32 from 32 to 512).
    weights_path: weights file of the base (the official legacy
      `..._notop.h5`, or a Keras 3 `.weights.h5`); None = random init.
      Use `vgg16_weights.resolve` to turn a config value into a path.
    dropout: rate of head_dropout, in [0, 1).
    pixel_mean, pixel_std: RGB normalisation of the input, in [0, 1] units.

  Returns:
    A Keras model named 'vgg16_cifar10' whose sub-model 'vgg16' is the base.
  """
  _check_common(num_classes, dropout)
  side_problem = sizes.problem(sizes.VGG16, input_size)
  _check(not side_problem, f'input_size {side_problem}')
  _check(len(pixel_mean) == 3 and len(pixel_std) == 3 and min(pixel_std) > 0,
         f'pixel_mean/pixel_std need 3 values (RGB), std > 0: got '
         f'{pixel_mean!r}, {pixel_std!r}.')
  if weights_path is not None and not os.path.isfile(weights_path):
    raise WeightsUnavailable(f'VGG16 weights file {weights_path!r} does not exist.')
  base = keras.applications.VGG16(include_top=False, weights=weights_path,
                                  input_shape=(input_size, input_size, 3))
  inputs = keras.Input(shape=(32, 32, 3), name='image')
  x = VGGPreprocessing(pixel_mean, pixel_std, name='vgg_preprocess')(inputs)
  x = base(_resized(x, input_size), training=False)
  x = layers.GlobalAveragePooling2D(name='avg_pool')(x)
  x = layers.Dropout(dropout, name='head_dropout')(x)
  return keras.Model(inputs, _classifier(x, num_classes), name='vgg16_cifar10')
