"""The shared Trainer: input pipeline, training phases, checkpoints, export.

Called through the thin per-model modules (`components.trainers.alexnet`,
`components.trainers.vgg16`), whose `run_fn = base.make_run_fn(build)` is
what TFX's Trainer component runs. A model module supplies only a `build`
function returning a `Built` (the Keras model and where its weights came from).
TensorFlow is imported only inside `run_fn`, so the model modules' `build`
also serve the backend-neutral benchmarks (KERAS_BACKEND=jax or torch).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from typing import Callable

import keras
import numpy as np

from components import fileio, settings
from components.cifar10 import CLASS_NAMES
from components.trainers import loop
from components.trainers.config import TrainerConfig

_log = logging.getLogger(__name__)
VALIDATION_BATCH = 256  # images per validation step, before rounding to replicas


@dataclasses.dataclass
class Built:
  model: keras.Model
  weights_origin: str = 'random'  # what the weights started from, in words
  pretrained: bool = False
  frozen_layer: str | None = None  # layer trained frozen for `head_epochs`


Builder = Callable[[TrainerConfig, np.ndarray, np.ndarray], Built]


def checkpoint_dir(fn_args) -> str:
  """A folder that depends only on the Trainer's inputs and configuration.

  It lies beside the Trainer's own outputs: TFX's model_run URI is
  `<pipeline root>/<node>/model_run/<execution>` locally (and one level less
  deep on Kubeflow), so the folder is `checkpoints/<key>` two levels above.
  A Trainer re-run by TFX after a crash gets a new execution and run dir but
  the same inputs and configuration, hence the same folder: it resumes there.
  """
  key = json.dumps([fn_args.custom_config, fn_args.transform_output,
                    sorted(fn_args.train_files), sorted(fn_args.eval_files)],
                   sort_keys=True, default=str)
  parent = os.path.dirname(os.path.dirname(fn_args.model_run_dir.rstrip('/')))
  return os.path.join(parent, 'checkpoints',
                      hashlib.sha256(key.encode()).hexdigest()[:16])


def make_run_fn(build: Builder) -> Callable:
  """Returns the `run_fn(fn_args)` that TFX's Trainer calls for this model."""

  def run_fn(fn_args) -> None:
    import tensorflow_transform as tft

    from components.trainers import data, device, export, whitening
    name = fn_args.custom_config['model_name']
    config = settings.from_json(TrainerConfig, fn_args.custom_config['settings'])
    checkpoints = checkpoint_dir(fn_args)
    keras.utils.set_random_seed(config.seed)
    plan = device.plan(config.devices, config.policy, config.jit_compile,
                       config.steps_per_execution)
    config = dataclasses.replace(config, batch_size=device.global_batch(
        config.batch_size, plan.replicas))
    keras.mixed_precision.set_global_policy(plan.policy)
    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    num_classes = len(CLASS_NAMES)
    train_examples = data.load_split(fn_args.train_files, tft_output, num_classes)
    val_examples = data.load_split(fn_args.eval_files, tft_output, num_classes)
    n_train, n_val = data.count(train_examples), data.count(val_examples)
    mean, std = export.channel_stats(tft_output)
    _log.info('%s: %d training and %d validation images, batch %d; %s', name,
              n_train, n_val, config.batch_size, plan.description)
    with plan.strategy.scope():
      built = build(config, mean, std)
      device.synchronize_batch_norm(built.model, plan.replicas)
      if config.first_layer_init == 'whitening':
        layer = whitening.whiten_first_convolution(built.model, data.images(
            train_examples, whitening.MAX_IMAGES), seed=config.seed)
        built.weights_origin += f'; {layer} starts whitening training patches'
    steps, per_execution = device.align_steps(
        config.steps_per_epoch or max(1, n_train // config.batch_size),
        plan.steps_per_execution)
    batches = lambda first_epoch: data.training_batches(
        train_examples, num_examples=n_train, batch_size=config.batch_size,
        steps=steps, seed=config.seed, first_epoch=first_epoch,
        alternate_flip=config.alternate_flip)
    val_batches = data.evaluation_batches(val_examples, device.global_batch(
        min(VALIDATION_BATCH, n_val), plan.replicas), num_examples=n_val)
    start = time.time()
    with plan.strategy.scope():
      log = loop.train(
          built.model, config, batches, steps, val_batches,
          frozen_layer=built.frozen_layer, checkpoint_dir=checkpoints,
          run_dir=fn_args.model_run_dir, jit_compile=plan.jit_compile,
          steps_per_execution=per_execution)
    seconds = time.time() - start
    # A float32 model on one device serves as it is; otherwise rebuild it
    # (building VGG16 resolves its weights again, a download where missing).
    serving = built.model
    if plan.policy != 'float32' or plan.replicas > 1:
      serving = export.float32_copy(built.model,
                                    lambda: build(config, mean, std).model)
    info = {
        'model_name': name, 'weights_origin': built.weights_origin,
        'pretrained': built.pretrained, 'params': int(built.model.count_params()),
        'epochs_run': len(log.rows), 'checkpoint_dir': checkpoints, 'training_seconds': seconds,
        'best_val_accuracy': log.best, 'device': plan.description,
        'optimizer': log.optimizer,
        'steps_per_epoch': steps, 'steps_per_execution': per_execution,
        'train_images': n_train, 'validation_images': n_val,
        'config': dataclasses.asdict(config)}
    with fileio.open_file(os.path.join(fn_args.model_run_dir, export.INFO_FILE),
                          'w') as f:
      json.dump(info, f, indent=2)
    export.export(serving, tft_output, CLASS_NAMES,
                  fn_args.serving_model_dir, info,
                  mirror=config.mirror_average)
    fileio.remove_tree(checkpoints)  # kept on failure, so a retry resumes
    _log.info('%s: best validation accuracy %.4f after %d epochs, %.0f s',
                 name, log.best, len(log.rows), seconds)

  return run_fn
