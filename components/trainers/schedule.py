"""Optimizer and learning-rate schedule of the training recipe.

Called by `components.trainers.base`; backend-neutral Keras 3, so the
benchmarks can reuse it under JAX or PyTorch.
"""

from __future__ import annotations

import keras

from components.trainers.config import DECAYS

REFERENCE_BATCH = 256  # the learning rate in the config is for this batch size


def peak_learning_rate(learning_rate: float, batch_size: int) -> float:
  """Linear scaling: the configured rate is for REFERENCE_BATCH images a step."""
  return learning_rate * batch_size / REFERENCE_BATCH


def warmup_decay(peak: float, total_steps: int, warmup_steps: int,
                 decay: str = 'cosine'):
  """Linear warm-up from 0 to `peak`, then `decay` (a cosine or a straight
  line) down to 0 at `total_steps`. With no warm-up the first step is at
  `peak`."""
  if decay not in DECAYS:
    raise ValueError(f'Unknown decay {decay!r}: use {" or ".join(DECAYS)}.')
  warmup_steps = max(0, min(warmup_steps, total_steps - 1))
  if decay == 'linear':
    return WarmupLinearDecay(peak, total_steps, warmup_steps)
  return keras.optimizers.schedules.CosineDecay(
      initial_learning_rate=0.0 if warmup_steps else peak,
      decay_steps=max(1, total_steps - warmup_steps),
      warmup_target=peak if warmup_steps else None,
      warmup_steps=warmup_steps, alpha=0.0)


@keras.saving.register_keras_serializable(package='cifar10_tfx')
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
  """A triangle: 0 to `peak` over `warmup_steps`, then back to 0 at
  `total_steps` (airbench's shape)."""

  def __init__(self, peak: float, total_steps: int, warmup_steps: int):
    self.peak, self.total_steps, self.warmup_steps = peak, total_steps, warmup_steps

  def __call__(self, step):
    step = keras.ops.cast(step, 'float32')
    down = (self.total_steps - step) / max(1, self.total_steps - self.warmup_steps)
    up = step / self.warmup_steps if self.warmup_steps else 1.0
    return self.peak * keras.ops.clip(keras.ops.minimum(up, down), 0.0, 1.0)

  def get_config(self):
    return dict(peak=self.peak, total_steps=self.total_steps,
                warmup_steps=self.warmup_steps)


class OffsetRate:
  """Mixin for a Keras optimizer: BatchNorm offsets (variables named 'beta')
  step at `offset_lr_factor` times the rate of the other weights (airbench's
  64x for BatchNorm biases), BatchNorm scales ('gamma') at `scale_lr_factor`
  times (0 = frozen at their initial 1, as airbench keeps them). Keras passes
  each variable's rate to `update_step`; the weight decay (none on either)
  is applied apart."""

  def __init__(self, *args, offset_lr_factor: float = 1.0,
               scale_lr_factor: float = 1.0, **kwargs):
    super().__init__(*args, **kwargs)
    self.offset_lr_factor = offset_lr_factor
    self.scale_lr_factor = scale_lr_factor
    self._factors = {}

  def build(self, variables):
    super().build(variables)
    by_name = {'beta': self.offset_lr_factor, 'gamma': self.scale_lr_factor}
    self._factors = {self._var_key(v): by_name[v.name] for v in variables
                     if by_name.get(v.name, 1.0) != 1.0}

  def update_step(self, gradient, variable, learning_rate):
    factor = self._factors.get(self._var_key(variable))
    if factor is not None:
      learning_rate = learning_rate * factor
    return super().update_step(gradient, variable, learning_rate)

  def get_config(self):
    return {**super().get_config(), 'offset_lr_factor': self.offset_lr_factor,
            'scale_lr_factor': self.scale_lr_factor}


@keras.saving.register_keras_serializable(package='cifar10_tfx')
class OffsetRateSGD(OffsetRate, keras.optimizers.SGD):
  """SGD whose BatchNorm offsets and scales take their own multiples of the rate."""


@keras.saving.register_keras_serializable(package='cifar10_tfx')
class OffsetRateAdamW(OffsetRate, keras.optimizers.AdamW):
  """AdamW whose BatchNorm offsets and scales take their own multiples of the rate."""


def trained_by(optimizer) -> keras.optimizers.Optimizer:
  """The optimizer that steps the weights: the one inside mixed_float16's
  LossScaleOptimizer, else `optimizer` itself."""
  return getattr(optimizer, 'inner_optimizer', optimizer)


def make_optimizer(name: str, schedule, *, momentum: float, weight_decay: float,
                   ema_momentum: float = 0.0,
                   offset_lr_factor: float = 1.0,
                   scale_lr_factor: float = 1.0) -> keras.optimizers.Optimizer:
  """SGD with Nesterov momentum or AdamW; no weight decay on biases and norms.

  `ema_momentum` > 0 keeps an exponential moving average of the trainable
  weights, updated every step (Keras's `use_ema`); `loop.train` validates and
  keeps it in place of the weights being trained. `offset_lr_factor` and
  `scale_lr_factor` != 1 multiply the rate of BatchNorm offsets and scales
  (`OffsetRate`; a scale factor 0 freezes them).
  """
  ema = dict(use_ema=True, ema_momentum=ema_momentum) if ema_momentum else {}
  offsets = {key: factor for key, factor in (
      ('offset_lr_factor', offset_lr_factor), ('scale_lr_factor', scale_lr_factor))
             if factor != 1}
  if name == 'sgd':
    optimizer = (OffsetRateSGD if offsets else keras.optimizers.SGD)(
        learning_rate=schedule, momentum=momentum, nesterov=True,
        weight_decay=weight_decay or None, **ema, **offsets)
  elif name == 'adamw':
    optimizer = (OffsetRateAdamW if offsets else keras.optimizers.AdamW)(
        learning_rate=schedule, weight_decay=weight_decay, **ema, **offsets)
  else:
    raise ValueError(f'Unknown optimizer {name!r}: use sgd or adamw.')
  if weight_decay:
    optimizer.exclude_from_weight_decay(var_names=['bias', 'gamma', 'beta'])
  return optimizer
