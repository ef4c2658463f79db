"""The training loop: phases, schedule, best-on-validation weights, resume.

Called by `components.trainers.base.make_run_fn` (inside TFX's Trainer).
Phases: an optional `head` phase trains only the new head on a frozen
pretrained base, then `full` trains everything. Every epoch is checkpointed
(Keras BackupAndRestore) under a directory that depends only on the Trainer's
inputs and configuration, so a Trainer killed mid-run and started again by
TFX resumes at its last finished epoch, and a finished phase is not redone.
A resumed run continues rather than replays: epoch e's batches and random
state (augmentation, dropout) depend only on (seed, e), the data through
`batches(e)`, the random state through `EpochSeeds`.
A loss that stops being a finite number ends the Trainer at once
(`StopOnNonFiniteLoss`, a `LossDiverged` naming the epoch, step and settings).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

import keras
import numpy as np

from components import fileio
from components.errors import UserError
from components.trainers import augment, schedule
from components.trainers.config import TrainerConfig

_log = logging.getLogger(__name__)
HISTORY_FILE = 'history.json'
BEST_WEIGHTS = 'best.weights.h5'


class LossDiverged(UserError):
  """The training loss became NaN or infinite; the message says what to lower."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
  """Raises LossDiverged at the first batch whose loss is not finite."""

  def __init__(self, config: TrainerConfig, phase: str):
    super().__init__()
    self.config, self.phase, self.epoch = config, phase, 0

  def on_epoch_begin(self, epoch, logs=None):
    self.epoch = epoch

  def on_train_batch_end(self, batch, logs=None):
    loss = (logs or {}).get('loss')
    if loss is not None and not np.isfinite(float(loss)):
      c = self.config
      raise LossDiverged(
          f'{c.module}: the training loss became {float(loss)} in phase '
          f'{self.phase}, epoch {self.epoch + 1}, step {batch + 1}: lower '
          f'learning_rate (now {c.learning_rate:g}) or raise warmup_epochs '
          f'(now {c.warmup_epochs:g}), and check the data.')


class EpochLog(keras.callbacks.Callback):
  """Per-epoch metrics (kept across phases and restarts) and the best weights.

  Writes the rows to `paths` (the run's log dir and the checkpoint dir) and the
  best weights by validation accuracy to the checkpoint dir.
  """

  def __init__(self, model, checkpoint_dir: str, run_dir: str, images_per_epoch: int):
    super().__init__()
    self.target = model  # the inner model (no augmentation layer)
    self.checkpoint_dir, self.run_dir = checkpoint_dir, run_dir
    self.images_per_epoch = images_per_epoch
    self.phase = ''
    saved = os.path.join(checkpoint_dir, HISTORY_FILE)
    self.rows = []
    if fileio.exists(saved):
      with fileio.open_file(saved) as f:
        self.rows = json.load(f)
    self.best = max((r.get('val_accuracy', -1.0) for r in self.rows), default=-1.0)
    self._start = 0.0
    self.optimizer = ''  # the class that trained the last phase run here

  def on_train_begin(self, logs=None):
    self.optimizer = type(schedule.trained_by(self.model.optimizer)).__name__

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
      self.target.save_weights(os.path.join(self.checkpoint_dir, BEST_WEIGHTS))
    for folder in (self.checkpoint_dir, self.run_dir):
      with fileio.open_file(os.path.join(folder, HISTORY_FILE), 'w') as f:
        json.dump(self.rows, f, indent=1)


class EpochSeeds(keras.callbacks.Callback):
  """Sets every random seed state of `model` (augmentation, dropout) from
  (its initial seed, epoch), at the start of each epoch: Keras's checkpoint
  does not hold these states, so without this a resumed epoch would replay
  the first epoch's crops and masks."""

  def __init__(self, model):
    super().__init__()
    self.states = [v for v in model.variables
                   if v.path.endswith('seed_generator_state')]
    self.initial = [int(np.asarray(v.numpy())[0]) for v in self.states]
    self.first_epoch = 0  # of the phase being fitted, counted over all phases

  def on_epoch_begin(self, epoch, logs=None):
    for state, seed in zip(self.states, self.initial):
      value = (seed + 1_000_003 * (self.first_epoch + epoch + 1)) % (2**31 - 1)
      state.assign(np.array([value, 0], dtype=state.dtype))


def resumed_epoch(backup_dir: str) -> int:
  """The epoch BackupAndRestore will resume a phase at (0 = from the start)."""
  path = os.path.join(backup_dir, 'training_metadata.json')
  if not fileio.exists(path):
    return 0
  with fileio.open_file(path) as f:
    return int(json.load(f)['epoch'])


def compile_model(model, config: TrainerConfig, *, peak_lr: float,
                  total_steps: int, warmup_steps: int, jit_compile=False,
                  steps_per_execution: int = 1) -> None:
  lr = schedule.warmup_decay(peak_lr, total_steps, warmup_steps, config.decay)
  model.compile(
      optimizer=schedule.make_optimizer(
          config.optimizer, lr, momentum=config.momentum,
          weight_decay=config.weight_decay, ema_momentum=config.ema_momentum,
          offset_lr_factor=config.offset_lr_factor,
          scale_lr_factor=config.scale_lr_factor),
      loss=keras.losses.CategoricalCrossentropy(
          label_smoothing=config.label_smoothing),
      # Weighted: Keras 3 calls `metrics` without the sample weights, so the
      # validation split's weight-0 padding (data.evaluation_batches) counted.
      weighted_metrics=['accuracy'], jit_compile=jit_compile,
      steps_per_execution=steps_per_execution)


def phases(config: TrainerConfig, frozen_layer: str | None, peak: float):
  """(name, epochs, peak learning rate, base frozen) for each phase to run."""
  head = config.head_epochs if frozen_layer else 0
  full_lr = peak * (config.fine_tune_lr_factor if head else 1.0)
  plan = [('head', head, peak, True), ('full', config.epochs - head, full_lr, False)]
  return [p for p in plan if p[1] > 0]


def with_augmentation(model, config: TrainerConfig):
  """The model to fit: batch augmentation (training only) in front of `model`."""
  random_flip = config.horizontal_flip and not config.alternate_flip
  if not (config.crop_padding or random_flip or config.rotation_degrees):
    return model  # the alternating flip, if on, is in the batches
  return keras.Sequential([
      keras.Input(model.input_shape[1:]),
      augment.BatchAugment(config.crop_padding, random_flip,
                           config.rotation_degrees, seed=config.seed,
                           name='augment'),
      model], name=f'{model.name}_training')


def ema_swap(config: TrainerConfig) -> list:
  """With `ema_momentum`, Keras's swap of the averaged weights into the model
  for validation and from each epoch's end to the next's start, so that the
  callbacks after it (EpochLog's best weights, the benchmarks' records) and
  the end of the phase see the average. It must come after BackupAndRestore,
  which has to checkpoint the weights being trained and their average each
  in its own place."""
  return ([keras.callbacks.SwapEMAWeights(swap_on_epoch=True)]
          if config.ema_momentum else [])


def train(model, config: TrainerConfig, batches, steps: int, val_batches, *,
          frozen_layer: str | None, checkpoint_dir: str, run_dir: str,
          jit_compile=False, steps_per_execution: int = 1, callbacks=(),
          tensorboard: bool = True) -> EpochLog:
  """Runs the phases, resuming from `checkpoint_dir`; ends on the best weights.

  `batches(e)` gives the training batches from epoch e on (counted over all
  phases); `steps` must be a multiple of `steps_per_execution`. `callbacks`
  are added to every phase's (the benchmarks record test accuracy and keep
  a deadline with them); `tensorboard=False` leaves out TensorBoard's,
  which needs TensorFlow (the benchmarks under JAX).
  """
  for folder in (checkpoint_dir, run_dir):
    fileio.makedirs(folder)
  trainable = with_augmentation(model, config)
  log = EpochLog(model, checkpoint_dir, run_dir, steps * config.batch_size)
  peak = schedule.peak_learning_rate(config.learning_rate, config.batch_size)
  verbose = 1 if sys.stdout.isatty() else 2
  seeds, next_start = EpochSeeds(trainable), 0
  for name, epochs, lr, frozen in phases(config, frozen_layer, peak):
    seeds.first_epoch, next_start = next_start, next_start + epochs
    if frozen_layer:
      model.get_layer(frozen_layer).trainable = not frozen
    done = os.path.join(checkpoint_dir, f'{name}.done.weights.h5')
    if fileio.exists(done):
      model.load_weights(done)
      _log.info('Phase %s already finished: weights restored.', name)
      continue
    warmup = 0 if name == 'head' else int(config.warmup_epochs * steps)
    compile_model(trainable, config, peak_lr=lr, total_steps=epochs * steps,
                  warmup_steps=warmup, jit_compile=jit_compile,
                  steps_per_execution=steps_per_execution)
    log.phase = name
    backup = os.path.join(checkpoint_dir, name)
    resumed = resumed_epoch(backup)
    phase_callbacks = [
        StopOnNonFiniteLoss(config, name),
        keras.callbacks.BackupAndRestore(backup),  # the weights being trained
        *ema_swap(config), seeds, log, *callbacks]
    if tensorboard:
      phase_callbacks.append(keras.callbacks.TensorBoard(log_dir=run_dir))
    if config.early_stopping_patience:
      phase_callbacks.append(keras.callbacks.EarlyStopping(
          monitor='val_accuracy', patience=config.early_stopping_patience))
    _log.info('Phase %s: %d epochs x %d steps, peak lr %.4g, %d trainable '
              'weights', name, epochs, steps, lr,
              sum(int(np.prod(w.shape)) for w in model.trainable_weights))
    trainable.fit(batches(seeds.first_epoch + resumed), epochs=epochs,
                  steps_per_epoch=steps,
                  validation_data=val_batches, callbacks=phase_callbacks,
                  verbose=verbose)
    model.save_weights(done)
  best = os.path.join(checkpoint_dir, BEST_WEIGHTS)
  if fileio.exists(best):
    model.load_weights(best)
  return log
