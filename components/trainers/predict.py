"""A model's class probabilities for a batch of images, optionally averaged
with the images' left-right mirrors (test-time augmentation).

Called by `components.trainers.export` (the serving signature, so the
Evaluator and every prediction) and by `bench/curve_training.py` (the
bench's `val_mirror`): one function, so what the bench reports with the
mirror is what the exported model serves. Keras ops only, so it runs under
any Keras backend (the device plans run the bench under JAX).
"""

from __future__ import annotations

from keras import ops


def probabilities(model, images, mirror: bool = False):
  """Float32 probabilities of `model` (inference mode) for NHWC `images`;
  with `mirror`, the mean of each image's and its mirror's."""
  out = ops.cast(model(images, training=False), 'float32')
  if mirror:  # NHWC: axis 2 runs left to right
    mirrored = model(ops.flip(images, axis=2), training=False)
    out = (out + ops.cast(mirrored, 'float32')) / 2
  return out
