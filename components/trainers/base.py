"""The shared Trainer: input pipeline, training phases, checkpoints, export.

Called through the thin per-model modules (`components.trainers.alexnet`,
`components.trainers.vgg16`), whose `run_fn = base.make_run_fn(build)` is
what TFX's Trainer component runs. A model module supplies only a `build`
function returning a `Built` (the Keras model and where its weights came from).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import time
from typing import Callable

import keras
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from components.trainers import data, device, export, schedule
from pipeline.config import TrainerConfig

_log = logging.getLogger(__name__)


@dataclasses.dataclass
class Built:
  model: keras.Model
  weights_origin: str = 'random'  # what the weights started from, in words
  pretrained: bool = False
  frozen_layer: str | None = None  # layer trained frozen for `head_epochs`


Builder = Callable[[TrainerConfig, np.ndarray, np.ndarray], Built]


class EpochLog(keras.callbacks.Callback):
  """Keeps per-epoch metrics and the best weights by validation accuracy."""

  def __init__(self, path: str, phase: str, images_per_epoch: int, previous=None):
    super().__init__()
    self.path, self.phase = path, phase
    self.images_per_epoch = images_per_epoch
    self.rows = list(previous.rows) if previous else []
    self.best = previous.best if previous else -1.0
    self.best_weights = previous.best_weights if previous else None
    self._start = 0.0

  def on_epoch_begin(self, epoch, logs=None):
    self._start = time.time()

  def on_epoch_end(self, epoch, logs=None):
    seconds = time.time() - self._start
    row = {k: float(v) for k, v in (logs or {}).items()
           if isinstance(v, (int, float, np.floating))}
    row.update(epoch=len(self.rows) + 1, phase=self.phase, seconds=seconds,
               images_per_second=self.images_per_epoch / max(seconds, 1e-9))
    self.rows.append(row)
    if row.get('val_accuracy', -1.0) > self.best:
      self.best = row['val_accuracy']
      self.best_weights = self.model.get_weights()
    with open(self.path, 'w') as f:
      json.dump(self.rows, f, indent=1)


def _compile(model, config: TrainerConfig, plan, learning_rate: float,
             total_steps: int, warmup_steps: int) -> None:
  lr = schedule.warmup_cosine(learning_rate, total_steps, warmup_steps)
  model.compile(
      optimizer=schedule.make_optimizer(
          config.optimizer, lr, momentum=config.momentum,
          weight_decay=config.weight_decay),
      loss=keras.losses.CategoricalCrossentropy(
          label_smoothing=config.label_smoothing),
      metrics=['accuracy'], jit_compile=plan.jit_compile,
      steps_per_execution=plan.steps_per_execution)


def train(built: Built, config: TrainerConfig, train_examples, n_train: int,
          val_batches, plan, run_dir: str) -> EpochLog:
  """Runs the phases (frozen head, then full) and restores the best weights."""
  model = built.model
  steps = config.steps_per_epoch or max(1, n_train // config.batch_size)
  batches = data.training_batches(
      train_examples, num_examples=n_train, batch_size=config.batch_size,
      seed=config.seed, crop_padding=config.crop_padding,
      horizontal_flip=config.horizontal_flip,
      rotation_degrees=config.rotation_degrees)
  peak = schedule.peak_learning_rate(config.learning_rate, config.batch_size)
  head_epochs = config.head_epochs if built.frozen_layer else 0
  phases = [('head', head_epochs, peak, True),
            ('full', config.epochs - head_epochs,
             peak * (config.fine_tune_lr_factor if head_epochs else 1.0), False)]
  log = None
  verbose = 1 if sys.stdout.isatty() else 2
  for name, epochs, lr, frozen in phases:
    if epochs <= 0:
      continue
    if built.frozen_layer:
      model.get_layer(built.frozen_layer).trainable = not frozen
    warmup = int(config.warmup_epochs * steps) if name != 'head' else 0
    _compile(model, config, plan, lr, epochs * steps, warmup)
    log = EpochLog(os.path.join(run_dir, 'history.json'), name,
                   steps * config.batch_size, previous=log)
    callbacks = [log, keras.callbacks.TensorBoard(log_dir=run_dir)]
    if config.early_stopping_patience:
      callbacks.append(keras.callbacks.EarlyStopping(
          monitor='val_accuracy', patience=config.early_stopping_patience))
    _log.info('Phase %s: %d epochs x %d steps, peak lr %.4g, %s trainable '
                 'params', name, epochs, steps, lr,
                 sum(int(np.prod(w.shape)) for w in model.trainable_weights))
    model.fit(batches, epochs=epochs, steps_per_epoch=steps,
              validation_data=val_batches, callbacks=callbacks, verbose=verbose)
  if log.best_weights is not None:
    model.set_weights(log.best_weights)
  return log


def make_run_fn(build: Builder) -> Callable:
  """Returns the `run_fn(fn_args)` that TFX's Trainer calls for this model."""

  def run_fn(fn_args) -> None:
    custom = dict(fn_args.custom_config)
    name, class_names = custom.pop('model_name'), custom.pop('class_names')
    custom.pop('code_fingerprint', None)
    config = TrainerConfig(**custom)
    keras.utils.set_random_seed(config.seed)
    plan = device.plan()
    keras.mixed_precision.set_global_policy(plan.policy)
    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    spec = tft_output.transformed_feature_spec()
    num_classes = len(class_names)
    train_examples = data.load_split(fn_args.train_files, spec, num_classes)
    val_examples = data.load_split(fn_args.eval_files, spec, num_classes)
    n_train, n_val = data.count(train_examples), data.count(val_examples)
    val_examples = val_examples.apply(
        tf.data.experimental.assert_cardinality(n_val))
    mean, std = export.channel_stats(tft_output)
    _log.info('%s: %d training and %d validation images; %s', name,
                 n_train, n_val, plan.description)
    with plan.strategy.scope():
      built = build(config, mean, std)
    start = time.time()
    log = train(built, config, train_examples, n_train,
                data.evaluation_batches(val_examples, 256), plan,
                fn_args.model_run_dir)
    seconds = time.time() - start
    keras.mixed_precision.set_global_policy('float32')
    info = {
        'model_name': name, 'weights_origin': built.weights_origin,
        'pretrained': built.pretrained, 'params': int(built.model.count_params()),
        'epochs_run': len(log.rows), 'training_seconds': seconds,
        'best_val_accuracy': log.best, 'device': plan.description,
        'train_images': n_train, 'validation_images': n_val,
        'config': dataclasses.asdict(config)}
    with open(os.path.join(fn_args.model_run_dir, export.INFO_FILE), 'w') as f:
      json.dump(info, f, indent=2)
    export.export(built.model, tft_output, class_names,
                  fn_args.serving_model_dir, info)
    _log.info('%s: best validation accuracy %.4f after %d epochs, %.0f s',
                 name, log.best, len(log.rows), seconds)

  return run_fn
