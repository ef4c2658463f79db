"""What makes one model's `TrainerConfig` unusable, found before any work starts.

Called by `pipeline.config.validate` (which raises the first problem as a
`ConfigError`, after checking every model's numbers against `BOUNDS`).
Imports no TensorFlow: it runs for `cifar10-tfx --help`-cheap commands too.
"""

from __future__ import annotations

from typing import Iterator

from components.trainers import device, sizes
from components.trainers.config import DECAYS, TrainerConfig

# Inclusive bounds of whole-number and real settings: sizes a machine can
# hold, counts a run can finish.
BOUNDS = {
    'epochs': (1, 10_000), 'batch_size': (1, 8192),
    'input_size': (sizes.SMALLEST, sizes.ANY.largest),  # any network's sides
    'steps_per_epoch': (0, 10 ** 7), 'head_epochs': (0, 10_000),
    'early_stopping_patience': (0, 10_000), 'crop_padding': (0, 64),
    'rotation_degrees': (0, 180), 'learning_rate': (1e-12, 100),
    'momentum': (0, 0.999999), 'ema_momentum': (0, 0.999999),
    'fine_tune_lr_factor': (1e-9, 100), 'offset_lr_factor': (1e-9, 1000),
    'scale_lr_factor': (0, 1000),
    'weight_decay': (0, 100),
    'warmup_epochs': (0, 10_000), 'gpus': (0, 64),
    # TensorFlow takes a global seed that is a multiple of 2**31 - 1 (0
    # included) with a tensor op seed (the Trainer's per-epoch shuffle) for
    # "no seed", and fails: 0 and 2**31 - 1 up are refused here.
    'seed': (1, 2 ** 31 - 2)}


def problems(name: str, t: TrainerConfig) -> Iterator[str]:
  """One message per unusable value of model `name` the bounds cannot catch."""
  side_problem = sizes.problem(sizes.rule_for(t.module), t.input_size)
  checks = [
      (name.isidentifier(), f'Model name {name!r} must be an identifier.'),
      (bool(t.module), f'{name}.module must name the trainer module.'),
      (t.optimizer in ('sgd', 'adamw'),
       f'{name}.optimizer must be sgd or adamw, got {t.optimizer!r}.'),
      (0.0 <= t.dropout < 1.0, f'{name}.dropout must lie in [0, 1).'),
      (0.0 <= t.label_smoothing < 1.0,
       f'{name}.label_smoothing must lie in [0, 1).'),
      (side_problem is None, f'{name}.input_size {side_problem}'),
      (0 <= t.head_epochs < t.epochs or t.head_epochs == 0,
       f'{name}.head_epochs must be smaller than {name}.epochs.'),
      (t.decay in DECAYS,
       f'{name}.decay must be {" or ".join(DECAYS)}, got {t.decay!r}.'),
      (t.horizontal_flip or not t.alternate_flip,
       f'{name}.alternate_flip needs {name}.horizontal_flip=true: set both, '
       'or neither.'),
      (t.first_layer_init in ('random', 'whitening'),
       f'{name}.first_layer_init must be random or whitening, got '
       f'{t.first_layer_init!r}.'),
      (t.first_layer_init != 'whitening' or t.weights == 'none',
       f'{name}.first_layer_init=whitening needs weights=none (it replaces '
       'the first layer of pretrained weights): change one of them.')]
  yield from (message for ok, message in checks if not ok)
  yield from _device_plan_problems(name, t)


def _device_plan_problems(name: str, t: TrainerConfig) -> Iterator[str]:
  try:
    replicas = device.parse_devices(t.devices)[1]
  except ValueError as error:
    replicas = 0
    yield f'{name}.{error}'
  if t.policy not in device.POLICIES:
    yield f'{name}.policy must be one of {", ".join(device.POLICIES)}.'
  if t.jit_compile not in device.SWITCHES:
    yield f'{name}.jit_compile must be one of {", ".join(device.SWITCHES)}.'
  if t.steps_per_execution < 0:
    yield f'{name}.steps_per_execution must be >= 0.'
  if replicas > 1 and (t.jit_compile == 'true' or t.steps_per_execution > 1):
    yield (f'{name}: with {replicas} replicas leave jit_compile and '
           'steps_per_execution on auto (both fail under MirroredStrategy).')
