"""Chooses the distribution strategy and numeric policy from the visible devices.

Called by `components.trainers.base` at the start of every Trainer run (on a
laptop, in a local DAG, or in a Kubeflow pod that sees 0, 1 or N GPUs), and by
`bench/accuracy_curve.py` under any Keras backend (`gpu_capabilities`,
`choose_policy`: TensorFlow is imported only by `plan`).
"""

from __future__ import annotations

import dataclasses
import logging
import typing

if typing.TYPE_CHECKING:
  import tensorflow as tf

_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class DevicePlan:
  strategy: 'tf.distribute.Strategy'
  policy: str  # keras mixed-precision policy name
  jit_compile: bool  # XLA
  steps_per_execution: int
  description: str


def choose_policy(gpu_compute_capabilities: list[tuple[int, int]]) -> str:
  """bfloat16 on Ampere/Hopper (8.0+), float16 on older GPUs, float32 on CPU."""
  if not gpu_compute_capabilities:
    return 'float32'
  if min(gpu_compute_capabilities) >= (8, 0):
    return 'mixed_bfloat16'
  return 'mixed_float16'


def gpu_capabilities(backend: str) -> list[tuple[int, int]]:
  """Compute capability of each GPU the Keras `backend` sees ([] on CPU)."""
  if backend == 'jax':
    import jax
    return [tuple(int(v) for v in str(d.compute_capability).split('.')[:2])
            for d in jax.devices() if d.platform == 'gpu']
  if backend == 'torch':
    import torch
    return [torch.cuda.get_device_capability(i)
            for i in range(torch.cuda.device_count())]
  import tensorflow as tf
  return [tuple(tf.config.experimental.get_device_details(gpu).get(
      'compute_capability', (0, 0))) for gpu in tf.config.list_physical_devices('GPU')]


def plan() -> DevicePlan:
  import tensorflow as tf
  gpus = gpu_capabilities('tensorflow')
  if len(gpus) > 1:
    strategy = tf.distribute.MirroredStrategy()
  else:
    strategy = tf.distribute.get_strategy()
  policy = choose_policy(gpus)
  description = (f'{len(gpus)} GPU(s) {gpus}, {policy}' if gpus
                 else 'CPU, float32')
  _log.info('Trainer device plan: %s', description)
  return DevicePlan(strategy=strategy, policy=policy, jit_compile=bool(gpus),
                    steps_per_execution=32 if gpus else 1,
                    description=description)
