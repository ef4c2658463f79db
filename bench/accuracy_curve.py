"""Accuracy per epoch of a model trained with its `full` recipe.

Run by a person (not by the tests), with the project's environment:

  .venv/bin/python bench/accuracy_curve.py --model alexnet --epochs 4 \
      --data ../shared/datasets/cifar10-jpeg.tar.gz [--set alexnet.batch_size=128]

Backend-neutral: it imports no TensorFlow itself (the models, augmentation,
schedule and training loop are Keras 3), so `KERAS_BACKEND=jax` or `torch`
runs it too, e.g. on a GPU machine without TensorFlow. The learning-rate
schedule spans the `--epochs` given. Validation accuracy is what a user would
select on; test accuracy is printed for the record only.
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


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--model', default='alexnet')
  parser.add_argument('--epochs', type=int, default=4)
  parser.add_argument('--data', default='')
  parser.add_argument('--per-class', type=int, default=0,
                      help='training images per class (0 = all 5,000)')
  parser.add_argument('--set', dest='overrides', action='append', default=[])
  args = parser.parse_args(argv)

  import importlib

  import keras

  from components.trainers import loop

  config = config_lib.preset('full')
  for assignment in args.overrides:
    config_lib.apply_override(config, assignment)
  trainer = config.models[args.model]
  trainer.epochs = args.epochs
  trainer.early_stopping_patience = 0
  config_lib.validate(config)

  start = time.time()
  source = sources.resolve_source(args.data, config.data.cache_dir)
  (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
      load(source, split, args.per_class) for split in ('train', 'validation', 'test'))
  raw = x_train.astype('float32') / 255.0
  mean, std = raw.mean(axis=(0, 1, 2)), raw.std(axis=(0, 1, 2))
  normalise = lambda x: ((x.astype('float32') / 255.0 - mean) / std).astype('float32')
  x_train, x_val, x_test = normalise(x_train), normalise(x_val), normalise(x_test)
  one_hot = lambda y: keras.utils.to_categorical(y, 10)
  print(f'backend={keras.backend.backend()} model={args.model} '
        f'train={len(x_train)} val={len(x_val)} test={len(x_test)} '
        f'load_s={time.time() - start:.1f}', flush=True)

  module = importlib.import_module(trainer.module)
  built = module.build(trainer, mean, std)
  model = built.model
  print(f'weights: {built.weights_origin}; params {model.count_params():,}', flush=True)
  steps = len(x_train) // trainer.batch_size
  peak = loop.schedule.peak_learning_rate(trainer.learning_rate, trainer.batch_size)
  training = loop.with_augmentation(model, trainer)
  t0 = time.time()
  for name, epochs, lr, frozen in loop.phases(trainer, built.frozen_layer, peak):
    if built.frozen_layer:
      model.get_layer(built.frozen_layer).trainable = not frozen
    loop.compile_model(training, trainer, peak_lr=lr, total_steps=epochs * steps,
                       warmup_steps=0 if name == 'head' else int(
                           trainer.warmup_epochs * steps))
    model.compile(loss='categorical_crossentropy', metrics=['accuracy'])
    for epoch in range(epochs):
      history = training.fit(x_train, one_hot(y_train), batch_size=trainer.batch_size,
                             epochs=epoch + 1, initial_epoch=epoch,
                             steps_per_epoch=steps, shuffle=True, verbose=0)
      val = model.evaluate(x_val, one_hot(y_val), batch_size=500, verbose=0)[1]
      test = model.evaluate(x_test, one_hot(y_test), batch_size=500, verbose=0)[1]
      print(f'phase={name} epoch={epoch + 1} wall_s={time.time() - t0:.0f} '
            f'train_acc={history.history["accuracy"][-1]:.4f} '
            f'val_acc={val:.4f} test_acc={test:.4f}', flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
