"""Validation accuracy of trained weights under several test-time augmentations.

Run by a person (not by the tests), with the project's environment, on the
weights a bench run kept and the split cache it read:

  .venv/bin/python bench/tta_accuracy.py --preset cpu --model alexnet \
      --weights alexnet.weights.h5 --cache cifar.npz [--set alexnet.X=Y ...]

Prints one line per view set: the image alone; with its mirror (what the
`cpu` preset serves, `components.trainers.predict.probabilities`); and the
mirror pair averaged with the mirror pairs of the image shifted diagonally
by `s` px both ways (reflect padding; airbench's `infer_mirror_translate`,
which averages logits where this averages probabilities), at 3x the
inference. Validation decides; test accuracy is printed for the record only.
Imports no TensorFlow itself, as bench/accuracy_curve.py.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import curve_training  # noqa: E402  (beside this file)
from pipeline import config as config_lib  # noqa: E402
from pipeline import overrides  # noqa: E402


def shifted(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
  """NHWC images moved by (dy, dx) px, the uncovered border reflected."""
  pad = max(abs(dy), abs(dx))
  padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode='reflect')
  rows, cols = x.shape[1:3]
  return padded[:, pad - dy:pad - dy + rows, pad - dx:pad - dx + cols]


def probabilities(model, x: np.ndarray, shift: int, batch_size: int = 500):
  """Mean probabilities of the mirror pairs of `x` and, when `shift` > 0, of
  `x` shifted by (-shift, -shift) and (+shift, +shift) (weights 1/2, 1/4, 1/4)."""
  import keras

  from components.trainers import predict

  def pair(images):
    return np.concatenate([keras.ops.convert_to_numpy(predict.probabilities(
        model, images[i:i + batch_size], True))
        for i in range(0, len(images), batch_size)])
  out = pair(x)
  if shift:
    out = 0.5 * out + 0.25 * (pair(shifted(x, -shift, -shift)) +
                              pair(shifted(x, shift, shift)))
  return out


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--preset', default='cpu', choices=sorted(config_lib.PRESETS))
  parser.add_argument('--model', default='alexnet')
  parser.add_argument('--weights', required=True, help='.weights.h5 of a bench run')
  parser.add_argument('--cache', required=True,
                      help='.npz of the decoded splits (bench/accuracy_curve.py --cache)')
  parser.add_argument('--set', dest='overrides', action='append', default=[])
  args = parser.parse_args(argv)

  import keras

  config = config_lib.preset(args.preset)
  for assignment in args.overrides:
    overrides.apply(config, assignment)
  trainer = config.models[args.model]
  with np.load(args.cache) as saved:
    x_train = saved['x_train']
    splits = {n: (saved[f'x_{n}'], saved[f'y_{n}']) for n in ('validation', 'test')}
  mean, std = curve_training.channel_stats(x_train)
  del x_train
  model = importlib.import_module(trainer.module).build(trainer, mean, std).model
  model.load_weights(args.weights)
  for name, (x, y) in splits.items():
    x = ((x.astype('float32') / 255.0 - mean) / std).astype('float32')
    start = time.time()
    plain = np.concatenate([keras.ops.convert_to_numpy(model(x[i:i + 500], training=False))
                            for i in range(0, len(x), 500)])
    line = f'{name}: plain={np.mean(plain.argmax(1) == y):.4f}'
    for shift in (0, 1, 2):
      line += f' mirror_shift{shift}={np.mean(probabilities(model, x, shift).argmax(1) == y):.4f}'
    print(f'{line} seconds={time.time() - start:.0f}', flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
