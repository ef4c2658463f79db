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

On a GPU it trains as the Trainer does there: the mixed-precision policy of
`components.trainers.device.choose_policy`, XLA, `--steps-per-execution`.
`--cache FILE.npz` keeps the decoded splits, so that several runs on one
machine decode the JPEGs once; `--deadline-s` ends the run (still printing
the summary) before an epoch that would not finish in time.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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
  """(train, validation, test) uint8 images and labels, from `cache` if given."""
  names = ('train', 'validation', 'test')
  if cache and os.path.exists(cache):
    with np.load(cache) as saved:
      return tuple((saved[f'x_{n}'], saved[f'y_{n}']) for n in names)
  splits = tuple(load(source, n, per_class) for n in names)
  if cache:  # whole or not at all: runs started side by side may share it
    partial = f'{cache}.{os.getpid()}.npz'
    np.savez(partial, **{f'{k}_{n}': v for n, split in zip(names, splits)
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
  parser.add_argument('--policy', default='auto',
                      help='keras dtype policy; auto = device.choose_policy')
  parser.add_argument('--peak-tflops', type=float, default=0.0,
                      help="the device's dense peak in the training dtype, for "
                           'the compute bound (0 = not printed)')
  parser.add_argument('--deadline-s', type=float, default=0.0,
                      help='stop before an epoch that would end after this '
                           'many seconds of training (0 = never)')
  args = parser.parse_args(argv)

  import importlib

  import keras

  from components.trainers import device, loop

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
  raw = x_train.astype('float32') / 255.0
  mean, std = raw.mean(axis=(0, 1, 2)), raw.std(axis=(0, 1, 2))
  normalise = lambda x: ((x.astype('float32') / 255.0 - mean) / std).astype('float32')
  x_train, x_val, x_test = normalise(x_train), normalise(x_val), normalise(x_test)
  one_hot = lambda y: keras.utils.to_categorical(y, 10)
  backend = keras.backend.backend()
  gpus = device.gpu_capabilities(backend)
  policy = device.choose_policy(gpus) if args.policy == 'auto' else args.policy
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
  macs = forward_macs(model)
  steps = len(x_train) // trainer.batch_size
  # Training is about 3 forward passes (forward, and backward for the
  # activations and for the weights), 2 FLOPs per multiply-accumulate.
  bound_s = (steps * trainer.batch_size * 6 * macs / (args.peak_tflops * 1e12)
             if args.peak_tflops else 0.0)
  print(f'weights: {built.weights_origin}; params {model.count_params():,}; '
        f'forward {macs / 1e9:.3f} GMAC per image; compute bound of an epoch '
        f'{bound_s:.2f} s at {args.peak_tflops:g} TFLOPS', flush=True)
  peak = loop.schedule.peak_learning_rate(trainer.learning_rate, trainer.batch_size)
  training = loop.with_augmentation(model, trainer)
  t0, rows, epoch_s = time.time(), [], 0.0
  for name, epochs, lr, frozen in loop.phases(trainer, built.frozen_layer, peak):
    if built.frozen_layer:
      model.get_layer(built.frozen_layer).trainable = not frozen
    loop.compile_model(training, trainer, peak_lr=lr, total_steps=epochs * steps,
                       warmup_steps=0 if name == 'head' else int(
                           trainer.warmup_epochs * steps),
                       jit_compile=jit, steps_per_execution=per_execution)
    model.compile(loss='categorical_crossentropy', metrics=['accuracy'],
                  jit_compile=jit)
    for epoch in range(epochs):
      if args.deadline_s and time.time() - t0 + epoch_s > args.deadline_s:
        print(f'deadline: stopped before epoch {len(rows) + 1}', flush=True)
        break
      begin = time.time()
      history = training.fit(x_train, one_hot(y_train), batch_size=trainer.batch_size,
                             epochs=epoch + 1, initial_epoch=epoch,
                             steps_per_epoch=steps, shuffle=True, verbose=0)
      train_s = time.time() - begin
      val = model.evaluate(x_val, one_hot(y_val), batch_size=500, verbose=0)[1]
      test = model.evaluate(x_test, one_hot(y_test), batch_size=500, verbose=0)[1]
      epoch_s = time.time() - begin
      rows.append(dict(epoch=len(rows) + 1, wall_s=time.time() - t0,
                       val_acc=val, test_acc=test))
      print(f'phase={name} epoch={epoch + 1} wall_s={rows[-1]["wall_s"]:.0f} '
            f'epoch_s={epoch_s:.1f} train_s={train_s:.1f} '
            f'images_per_s={steps * trainer.batch_size / train_s:.0f} '
            + (f'bound_ratio={train_s / bound_s:.1f} ' if bound_s else '') +
            f'train_acc={history.history["accuracy"][-1]:.4f} '
            f'val_acc={val:.4f} test_acc={test:.4f}', flush=True)
  if rows:
    print(f'summary model={args.model} {summarise(rows)}', flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
