"""Accuracy per epoch of a model trained with a preset's recipe.

Run by a person (not by the tests), with the project's environment:

  .venv/bin/python bench/accuracy_curve.py --preset cpu --model alexnet \
      --data ../shared/datasets/cifar10-jpeg.tar.gz [--set alexnet.batch_size=64]

Backend-neutral: it imports no TensorFlow itself (the models, augmentation,
schedule and training loop are Keras 3), so `KERAS_BACKEND=jax` or `torch`
runs it too, e.g. on a GPU machine without TensorFlow. The learning-rate
schedule spans the `--epochs` given (default: the preset's). Validation
accuracy is what a user would select on; test accuracy is printed for the
record only, and the closing `summary` line gives the test accuracy at the
best validation epoch, as the Trainer's best-on-validation checkpoint would.

It trains with the Trainer's own loop (`components.trainers.loop.train`:
phases, schedule, per-epoch seeds, best-on-validation weights), fed from
numpy arrays normalised with Transform's statistics (`bench/curve_training.py`),
so the two cannot drift. On a GPU it trains as the Trainer does there: the
mixed-precision policy of `components.trainers.device.resolve_policy`, XLA,
`--steps-per-execution`; on a CPU, the model's `policy` setting (the `cpu`
preset's AlexNet: bfloat16 where the CPU has it; `--set alexnet.policy=float32`
to compare).
`--cache FILE.npz` keeps the decoded splits, so that several runs on one
machine decode the JPEGs once; `--deadline-s` ends the run (still printing
the summary) before an epoch that would not finish in time; `--save-weights`
keeps the weights it ends on.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import curve_training  # noqa: E402  (beside this file)
from components.ingest import sources  # noqa: E402
from pipeline import config as config_lib  # noqa: E402
from pipeline import overrides  # noqa: E402


def load(source, split: str, per_class: int) -> tuple[np.ndarray, np.ndarray]:
  from PIL import Image
  images, labels = [], []
  for _, label, png in sources.read_split(
      source, split, validation_fraction=0.1, salt=config_lib.DataConfig().split_salt,
      train_per_class=per_class if split != 'test' else 0,
      test_per_class=per_class // 5 if split == 'test' else 0):
    images.append(np.asarray(Image.open(io.BytesIO(png)).convert('RGB')))
    labels.append(label)
  return np.stack(images), np.array(labels)


def load_all(source, per_class: int, cache: str):
  """(train, validation, test) uint8 images and labels, from `cache` if given.
  The cache records the --per-class it was made with; another is refused
  (a subset run must not read all of CIFAR-10, nor the other way round)."""
  names = ('train', 'validation', 'test')
  if cache and os.path.exists(cache):
    with np.load(cache) as saved:
      splits = tuple((saved[f'x_{n}'], saved[f'y_{n}']) for n in names)
      # A cache from before the count was recorded holds the whole set.
      made_with = (int(saved['per_class']) if 'per_class' in saved.files
                   else 0 if len(splits[0][1]) + len(splits[1][1]) == 50_000
                   else None)
    if made_with != per_class:
      sys.exit(f'{cache} holds the splits of --per-class '
               f'{"unknown" if made_with is None else made_with}, not {per_class}: '
               f'give another --cache file (or delete this one).')
    return splits
  splits = tuple(load(source, n, per_class) for n in names)
  if cache:  # whole or not at all: runs started side by side may share it
    partial = f'{cache}.{os.getpid()}.npz'
    np.savez(partial, per_class=per_class,
             **{f'{k}_{n}': v for n, split in zip(names, splits)
                for k, v in zip('xy', split)})
    os.replace(partial, cache)
  return splits


def forward_macs(model) -> int:
  """Multiply-accumulates of one image's forward pass (convolutions and dense
  layers, nested models included): the compute bound's numerator."""
  total = 0
  for layer in model.layers:
    if hasattr(layer, 'layers'):
      total += forward_macs(layer)
    elif hasattr(layer, 'kernel') and len(layer.kernel.shape) == 4:
      height, width = layer.output.shape[1:3]
      total += int(np.prod(layer.kernel.shape)) * height * width
    elif hasattr(layer, 'kernel'):
      total += int(np.prod(layer.kernel.shape))
  return total


def summarise(rows: list[dict], targets=(0.7912, 0.90)) -> str:
  """Best validation epoch, the test accuracy there, and time to each target."""
  best = max(rows, key=lambda r: r['val_acc'])
  text = (f'best_val_acc={best["val_acc"]:.4f} best_epoch={best["epoch"]} '
          f'test_acc_at_best_val={best["test_acc"]:.4f} '
          f'last_test_acc={rows[-1]["test_acc"]:.4f} epochs_run={len(rows)} '
          f'wall_s={rows[-1]["wall_s"]:.0f}')
  for target in targets:
    hit = next((r for r in rows if r['test_acc'] >= target), None)
    text += (f' test_{target:.4f}_at=' +
             (f'epoch{hit["epoch"]}/{hit["wall_s"]:.0f}s' if hit else 'never'))
  return text


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--preset', default='full', choices=sorted(config_lib.PRESETS))
  parser.add_argument('--model', default='alexnet')
  parser.add_argument('--epochs', type=int, default=0,
                      help="epochs the schedule spans (0 = the preset's)")
  parser.add_argument('--data', default='')
  parser.add_argument('--per-class', type=int, default=0,
                      help='training images per class (0 = all 5,000)')
  parser.add_argument('--set', dest='overrides', action='append', default=[])
  parser.add_argument('--cache', default='',
                      help='.npz file of the decoded splits (read, or written)')
  parser.add_argument('--steps-per-execution', type=int, default=0,
                      help='0 = 32 on a GPU, 1 on a CPU')
  parser.add_argument('--peak-tflops', type=float, default=0.0,
                      help="the device's dense peak in the training dtype, for "
                           'the compute bound (0 = not printed)')
  parser.add_argument('--deadline-s', type=float, default=0.0,
                      help='stop before an epoch that would end after this '
                           'many seconds of training (0 = never)')
  parser.add_argument('--save-weights', default='',
                      help='.weights.h5 file for the trained (best-on-'
                           'validation) weights, e.g. to study test-time '
                           'augmentation without training again')
  args = parser.parse_args(argv)

  import importlib

  import keras

  from components.trainers import device, loop, whitening

  config = config_lib.preset(args.preset)
  for assignment in args.overrides:
    overrides.apply(config, assignment)
  if args.model not in config.models:
    parser.error(f'--model: choose one of {", ".join(config.models)}')
  trainer = config.models[args.model]
  trainer.epochs = args.epochs or trainer.epochs
  trainer.early_stopping_patience = 0
  config_lib.validate(config)
  keras.utils.set_random_seed(trainer.seed)  # as the Trainer does: init, shuffle

  start = time.time()
  source = sources.resolve_source(args.data, config.data.cache_dir)
  (x_train, y_train), (x_val, y_val), (x_test, y_test) = load_all(
      source, args.per_class, args.cache)
  mean, std = curve_training.channel_stats(x_train)  # as Transform's analyzers
  x_train, x_val, x_test = (curve_training.normalise(x, mean, std)
                            for x in (x_train, x_val, x_test))
  one_hot = lambda y: keras.utils.to_categorical(y, 10)
  backend = keras.backend.backend()
  gpus = device.gpu_capabilities(backend)
  policy = device.resolve_policy(trainer.policy, gpus)  # as device.plan
  keras.mixed_precision.set_global_policy(policy)
  jit = bool(gpus) or backend == 'jax'  # JAX without jit runs op by op
  per_execution = args.steps_per_execution or (32 if gpus else 1)
  print(f'backend={backend} gpus={gpus} policy={policy} jit={jit} '
        f'steps_per_execution={per_execution} model={args.model} '
        f'train={len(x_train)} val={len(x_val)} test={len(x_test)} '
        f'load_s={time.time() - start:.1f} config={trainer}', flush=True)

  module = importlib.import_module(trainer.module)
  built = module.build(trainer, mean, std)
  model = built.model
  if trainer.first_layer_init == 'whitening':  # as the Trainer's run_fn does
    layer = whitening.whiten_first_convolution(
        model, x_train[:whitening.MAX_IMAGES], seed=trainer.seed)
    print(f'{layer}: starts whitening the training patches', flush=True)
  macs = forward_macs(model)
  steps = len(x_train) // trainer.batch_size
  steps -= steps % per_execution  # whole executions, as the Trainer runs them
  # Training is about 3 forward passes (forward, and backward for the
  # activations and for the weights), 2 FLOPs per multiply-accumulate.
  bound_s = (steps * trainer.batch_size * 6 * macs / (args.peak_tflops * 1e12)
             if args.peak_tflops else 0.0)
  print(f'weights: {built.weights_origin}; params {model.count_params():,}; '
        f'forward {macs / 1e9:.3f} GMAC per image; compute bound of an epoch '
        f'{bound_s:.2f} s at {args.peak_tflops:g} TFLOPS', flush=True)
  phases = loop.phases(trainer, built.frozen_layer, trainer.learning_rate)
  record = curve_training.EpochRecord(
      model, (x_val, one_hot(y_val)), (x_test, one_hot(y_test)),
      phases=[name for name, epochs, _, _ in phases for _ in range(epochs)],
      images_per_epoch=steps * trainer.batch_size, bound_s=bound_s,
      deadline_s=args.deadline_s)
  with tempfile.TemporaryDirectory() as work:
    try:  # the Trainer's own loop: phases, schedule, seeds, best weights
      loop.train(
          model, trainer, curve_training.numpy_batches(
              x_train, one_hot(y_train), batch_size=trainer.batch_size,
              steps=steps, seed=trainer.seed,
              alternate_flip=trainer.alternate_flip),
          steps, (x_val, one_hot(y_val)), frozen_layer=built.frozen_layer,
          checkpoint_dir=os.path.join(work, 'checkpoints'),
          run_dir=os.path.join(work, 'run'), jit_compile=jit,
          steps_per_execution=per_execution, callbacks=[record],
          tensorboard=False)
    except curve_training.DeadlineReached as stop:
      print(stop, flush=True)
  rows = record.rows
  if args.save_weights and rows:
    model.save_weights(args.save_weights)
    print(f'weights saved to {args.save_weights}', flush=True)
  if rows:
    print(f'summary model={args.model} {summarise(rows)}', flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
