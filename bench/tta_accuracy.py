"""Validation accuracy of trained weights under several test-time augmentations.

Run by a person (not by the tests), with the project's environment, on the
weights a bench run kept (`--weights`) or on a pipeline run's exported model
(`--saved-model`: the Trainer's `Format-Serving` folder, a pushed version, or
a folder of versions, found as `cifar10-tfx predict --model` finds it; the
same `--preset` and `--set` as that run), and the split cache that
bench/accuracy_curve.py wrote:

  .venv/bin/python bench/tta_accuracy.py --preset cpu --model alexnet \
      --weights alexnet.weights.h5 --cache cifar.npz [--set alexnet.X=Y ...]

Prints one line per view set: the image alone; with its mirror (what the
`cpu` preset serves, `components.trainers.predict.probabilities`); and the
mirror pair averaged with the mirror pairs of the image shifted diagonally
by `s` px both ways (reflect padding; airbench's `infer_mirror_translate`,
which averages logits where this averages probabilities), at 3x the
inference. Validation decides; test accuracy is printed for the record only.
Imports no TensorFlow itself, as bench/accuracy_curve.py, except to read a
`--saved-model`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import accuracy_curve  # noqa: E402  (beside this file)
import curve_training  # noqa: E402
from pipeline import config as config_lib  # noqa: E402
from pipeline import overrides  # noqa: E402
from pipeline.commands import UserError, predict  # noqa: E402


def shifted(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
  """NHWC images moved by (dy, dx) px, the uncovered border reflected."""
  pad = max(abs(dy), abs(dx))
  padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode='reflect')
  rows, cols = x.shape[1:3]
  return padded[:, pad - dy:pad - dy + rows, pad - dx:pad - dx + cols]


def probabilities(model, x: np.ndarray, shifts, batch_size: int = 500) -> dict:
  """{shift: probabilities} for each of `shifts`: the mirror pair of `x` (shift
  0), or its mean with the mirror pairs of `x` shifted by (-shift, -shift) and
  (+shift, +shift) (weights 1/2, 1/4, 1/4). The pair of `x` is computed once."""
  import keras

  from components.trainers import predict

  def pair(images):
    return np.concatenate([keras.ops.convert_to_numpy(predict.probabilities(
        model, images[i:i + batch_size], True))
        for i in range(0, len(images), batch_size)])
  base = pair(x)
  return {shift: base if not shift else
          0.5 * base + 0.25 * (pair(shifted(x, -shift, -shift)) +
                               pair(shifted(x, shift, shift)))
          for shift in shifts}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--preset', default='cpu', choices=sorted(config_lib.PRESETS))
  parser.add_argument('--model', default='alexnet')
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument('--weights', help='.weights.h5 of a bench run')
  source.add_argument('--saved-model', help="a pipeline run's exported model folder")
  parser.add_argument('--cache', required=True,
                      help='.npz of the decoded splits (bench/accuracy_curve.py --cache)')
  parser.add_argument('--set', dest='overrides', action='append', default=[])
  args = parser.parse_args(argv)
  if not os.path.isfile(args.cache):
    parser.error(f'--cache: {args.cache} is not a file; write it with '
                 'bench/accuracy_curve.py --cache')
  if args.saved_model:
    try:
      args.saved_model = predict.resolve_model(args.saved_model)
    except UserError as error:
      parser.error(f'--saved-model: {error}')

  import keras

  config = config_lib.preset(args.preset)
  for assignment in args.overrides:
    overrides.apply(config, assignment)
  trainer = config.models[args.model]
  (x_train, _), validation, test = accuracy_curve.load_all(None, 0, args.cache)
  mean, std = curve_training.channel_stats(x_train)
  del x_train
  model = importlib.import_module(trainer.module).build(trainer, mean, std).model
  if args.weights:
    model.load_weights(args.weights)
  else:
    from components.trainers import export
    export.restore_weights(model, args.saved_model)
  for name, (x, y) in (('validation', validation), ('test', test)):
    x = curve_training.normalise(x, mean, std)
    start = time.time()
    plain = curve_training.accuracy(model, x, keras.utils.to_categorical(y, 10))
    line = f'{name}: plain={plain:.4f}'
    for shift, out in probabilities(model, x, (0, 1, 2)).items():
      line += f' mirror_shift{shift}={np.mean(out.argmax(1) == y):.4f}'
    print(f'{line} seconds={time.time() - start:.0f}', flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
