"""BatchNorm offsets and scales at multiples of the rate (`schedule.OffsetRate`):
the `offset_lr_factor` the `cpu` preset sets and `scale_lr_factor` (0 freezes
the scales): one compiled training step with a factor against one without,
from the same weights."""

from __future__ import annotations

import contextlib
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from components.trainers import schedule
from tests import conftest

FACTOR = 8.0


def _one_step_moves(optimizer_name: str, factor: float, wrap: str,
                    replicas: int = 1, scale_factor: float = 1.0) -> dict:
  """{variable path: its change} after one compiled training step (the
  TensorFlow backend's update path, as in the Trainer) from fixed weights;
  `wrap` 'mirrored' builds it in a MirroredStrategy over `replicas` CPU
  devices (distributed variables, as on GPU workers), 'loss_scale' wraps the
  optimizer as mixed_float16 does."""
  keras.utils.set_random_seed(3)
  devices = [f'/cpu:{i}' for i in range(replicas)]
  scope = (tf.distribute.MirroredStrategy(devices).scope()
           if wrap == 'mirrored' else contextlib.nullcontext())
  with scope:
    model = keras.Sequential([
        keras.Input((4,)), keras.layers.Dense(3, use_bias=False, name='fc'),
        keras.layers.BatchNormalization(name='bn'), keras.layers.Dense(2, name='out')],
        name='net')
    optimizer = schedule.make_optimizer(optimizer_name, 0.01, momentum=0.9,
                                        weight_decay=5e-3, offset_lr_factor=factor,
                                        scale_lr_factor=scale_factor)
    if wrap == 'loss_scale':
      optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(optimizer=optimizer, loss='mse')
  before = {v.path: v.numpy().copy() for v in model.trainable_variables}
  x = np.random.default_rng(0).normal(size=(16, 4)).astype('float32')
  model.train_on_batch(x, np.ones((16, 2), 'float32'))
  return {v.path: v.numpy() - before[v.path] for v in model.trainable_variables}


def _assert_only_one_bn_variable_scaled(plain: dict, fast: dict, name: str = 'beta',
                                        factor: float = FACTOR) -> None:
  """Only BatchNorm's `name` variable moved `factor` x as far."""
  scaled = [p for p in plain if p.endswith(f'/{name}')]
  assert len(scaled) == 1 and np.abs(plain[scaled[0]]).max() > 0
  np.testing.assert_allclose(fast[scaled[0]], factor * plain[scaled[0]], rtol=1e-4)
  for path in plain.keys() - set(scaled):  # kernels, the other BN variable, the dense bias
    np.testing.assert_allclose(fast[path], plain[path], rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize('optimizer_name, wrap', [
    ('adamw', 'none'), ('sgd', 'none'), ('adamw', 'mirrored'), ('sgd', 'loss_scale')])
def test_offset_lr_factor_scales_only_the_batchnorm_offsets_step(optimizer_name, wrap):
  plain, fast = (_one_step_moves(optimizer_name, f, wrap) for f in (1.0, FACTOR))
  _assert_only_one_bn_variable_scaled(plain, fast)


@pytest.mark.parametrize('optimizer_name, scale_factor', [
    ('adamw', 0.0), ('sgd', 0.0), ('adamw', FACTOR)])
def test_scale_lr_factor_scales_or_freezes_only_the_batchnorm_scales(
    optimizer_name, scale_factor):
  plain, other = (_one_step_moves(optimizer_name, 1.0, 'none', scale_factor=f)
                  for f in (1.0, scale_factor))
  _assert_only_one_bn_variable_scaled(plain, other, 'gamma', scale_factor)  # 0: exactly still


# Two logical CPU devices exist only if made before TensorFlow starts, so the
# step runs in a fresh process, split the way `devices=emulated:2` splits it.
TWO_REPLICAS = f'''
import json
from components.trainers import device
device.configure('emulated:2')
from tests.components.trainers import test_offset_rate as t
moves = [t._one_step_moves('adamw', f, 'mirrored', replicas=2) for f in (1.0, {FACTOR})]
print(json.dumps([{{k: v.tolist() for k, v in m.items()}} for m in moves]))
'''


def test_offset_lr_factor_holds_across_two_replicas():
  """Each replica steps its copy of an offset by the all-reduced gradient at
  the scaled rate (Keras hands `update_step` each device's component of a
  mirrored variable; `_var_key` maps it back). What this cannot check: a
  GPU's NCCL all-reduce in place of the CPU's."""
  done = conftest.run_bounded(TWO_REPLICAS, memory_mb=16384, timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  plain, fast = ({k: np.array(v) for k, v in m.items()}
                 for m in json.loads(done.stdout.strip().splitlines()[-1]))
  _assert_only_one_bn_variable_scaled(plain, fast)


def test_offset_lr_factor_one_is_the_plain_keras_optimizer():
  optimizer = schedule.make_optimizer('adamw', 0.1, momentum=0.9,
                                      weight_decay=0.0, offset_lr_factor=1.0)
  assert type(optimizer) is keras.optimizers.AdamW
