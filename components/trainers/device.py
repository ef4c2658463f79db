"""Chooses the distribution strategy, numeric policy and compile settings.

Called by `components.trainers.base` at the start of every Trainer run (on a
laptop, in a local DAG, or in a Kubeflow pod that sees 0, 1 or N GPUs), by
the local runner (`configure`, before TensorFlow starts, so that a forced
`emulated:N` plan can split the CPU into N logical devices), by
`pipeline/config.py` (`parse_devices`) and by `bench/accuracy_curve.py` under
any Keras backend (`gpu_capabilities`, `resolve_policy`; TensorFlow is
imported only by `configure` and `plan`).

The plan for N accelerators, measured on emulated devices (README, Devices):
one device gets XLA and 32 steps per execution; under MirroredStrategy both
fail in Keras 3.12 / TF 2.16 (XLA: one cluster touches every replica's seed
state; several steps per execution: keras-team/keras#19246), so several
replicas get neither. A process keeps ONE strategy: the local runner runs
both Trainers in one process, and a second MirroredStrategy restarts TF's
collective keys, which then collide with the first's (tensorflow#62790).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import typing

if typing.TYPE_CHECKING:
  import tensorflow as tf

_log = logging.getLogger(__name__)
POLICIES = ('auto', 'native_bfloat16', 'float32', 'mixed_bfloat16',
            'mixed_float16')
# /proc/cpuinfo flags of a CPU with bfloat16 dot products in hardware: without
# them oneDNN emulates bfloat16, slower than float32 by its documentation.
CPU_BFLOAT16_FLAGS = frozenset({'avx512_bf16', 'amx_bf16'})
CPUINFO = '/proc/cpuinfo'
SWITCHES = ('auto', 'true', 'false')
STEPS_PER_EXECUTION = 32  # on one accelerator
_strategies: dict[tuple[str, ...], 'tf.distribute.Strategy'] = {}


@dataclasses.dataclass(frozen=True)
class DevicePlan:
  strategy: 'tf.distribute.Strategy'
  replicas: int
  policy: str  # keras mixed-precision policy name
  jit_compile: bool  # XLA
  steps_per_execution: int
  description: str


def parse_devices(spec: str) -> tuple[str, int]:
  """'auto' -> ('auto', 0), 'cpu' -> ('cpu', 0), 'emulated:N' -> ('emulated', N).

  Raises ValueError on anything else (N must be an integer >= 1).
  """
  word, _, count = spec.strip().lower().partition(':')
  if word in ('auto', 'cpu') and not count:
    return word, 0
  if word == 'emulated' and count.isdigit() and int(count) >= 1:
    return word, int(count)
  raise ValueError(f'devices must be auto, cpu or emulated:N (N >= 1), '
                   f'got {spec!r}.')


def choose_policy(gpu_compute_capabilities: list[tuple[int, int]]) -> str:
  """bfloat16 on Ampere/Hopper (8.0+), float16 on older GPUs, float32 on CPU."""
  if not gpu_compute_capabilities:
    return 'float32'
  if min(gpu_compute_capabilities) >= (8, 0):
    return 'mixed_bfloat16'
  return 'mixed_float16'


def cpu_has_native_bfloat16(cpuinfo: str = CPUINFO) -> bool:
  """Whether the first CPU listed in `cpuinfo` (Linux) has a bfloat16 flag.

  False where the file is missing or unreadable (macOS, Windows): float32
  is then the safe choice.
  """
  try:
    with open(cpuinfo, encoding='ascii', errors='replace') as f:
      for line in f:
        if line.startswith('flags'):
          return bool(CPU_BFLOAT16_FLAGS & set(line.partition(':')[2].split()))
  except OSError:
    pass
  return False


def resolve_policy(policy: str, gpu_compute_capabilities: list[tuple[int, int]],
                   cpuinfo: str = CPUINFO) -> str:
  """The Keras policy name for the setting `policy` on these devices.

  'auto' is `choose_policy`'s; 'native_bfloat16' is the same except on a CPU
  with bfloat16 in hardware (`cpu_has_native_bfloat16`), where it is
  'mixed_bfloat16'; any other value is itself.
  """
  if policy == 'native_bfloat16' and not gpu_compute_capabilities:
    return ('mixed_bfloat16' if cpu_has_native_bfloat16(cpuinfo) else
            'float32')
  if policy in ('auto', 'native_bfloat16'):
    return choose_policy(gpu_compute_capabilities)
  return policy


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


def configure(spec: str) -> None:
  """For 'emulated:N', splits the CPU into N logical devices.

  Must run before TensorFlow initialises its devices (its first op); a
  process already split N ways passes, any other layout raises RuntimeError.
  """
  word, count = parse_devices(spec)
  if word != 'emulated':
    return
  import tensorflow as tf
  cpu = tf.config.list_physical_devices('CPU')[0]
  try:
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * count)
  except RuntimeError:  # already initialised
    pass
  found = len(tf.config.list_logical_devices('CPU'))
  if found != count:
    raise RuntimeError(
        f'devices=emulated:{count} needs {count} logical CPU devices, but '
        f'TensorFlow started with {found}: set it up before any TensorFlow op '
        '(the local runner does), and give every model the same value.')


def _strategy(names: list[str]):
  """One strategy per set of devices for the life of the process."""
  import tensorflow as tf
  key = tuple(names)
  if key not in _strategies:
    _strategies[key] = (tf.distribute.MirroredStrategy(list(names))
                        if len(names) > 1 else tf.distribute.get_strategy())
  return _strategies[key]


def _choice(value: str, auto: bool) -> bool:
  return auto if value == 'auto' else value == 'true'


def plan(devices: str = 'auto', policy: str = 'auto', jit_compile: str = 'auto',
         steps_per_execution: int = 0) -> DevicePlan:
  """The plan for the devices this process sees, or for the forced `devices`.

  'emulated:N' plans as for N GPUs of compute capability 8.0 (bfloat16), on N
  logical CPU devices (`configure`). The other arguments override the plan's
  own choice when not 'auto' / 0.
  """
  import tensorflow as tf
  word, count = parse_devices(devices)
  configure(devices)
  if word == 'emulated':
    capabilities = [(8, 0)] * count
    names = [d.name for d in tf.config.list_logical_devices('CPU')]
  else:
    capabilities = [] if word == 'cpu' else gpu_capabilities('tensorflow')
    names = [d.name for d in tf.config.list_logical_devices('GPU')] if (
        capabilities) else ['/cpu:0']
  replicas = max(1, len(capabilities))
  one_accelerator = len(capabilities) == 1
  jit = _choice(jit_compile, one_accelerator)
  per_execution = steps_per_execution or (
      STEPS_PER_EXECUTION if one_accelerator else 1)
  if replicas > 1 and (jit or per_execution > 1):
    raise ValueError(
        f'{replicas} replicas (MirroredStrategy) cannot train with XLA or with '
        'several steps per execution in Keras 3.12 / TF 2.16 (README, '
        'Devices): leave jit_compile and steps_per_execution on auto.')
  chosen = resolve_policy(policy, capabilities)
  where = (f'{count} emulated device(s) on CPU' if word == 'emulated' else
           f'{len(capabilities)} GPU(s) {capabilities}' if capabilities else 'CPU')
  description = (f'{where}, {chosen}, {replicas} replica(s), XLA {jit}, '
                 f'{per_execution} step(s) per execution')
  _log.info('Trainer device plan: %s', description)
  return DevicePlan(strategy=_strategy(names), replicas=replicas, policy=chosen,
                    jit_compile=jit, steps_per_execution=per_execution,
                    description=description)


def synchronize_batch_norm(model, replicas: int) -> int:
  """With several replicas, makes every BatchNormalization layer in `model`
  (nested ones too) compute its batch statistics over the global batch
  (Keras's `synchronized`: three all-reduces per layer and step), as one
  device does; returns how many it set. Without it, each replica updates its
  own copy of the moving statistics from its shard (Keras 3 creates them with
  no aggregation): validation during fit runs each shard through its own
  replica's statistics, while the saved and exported weights hold the first
  replica's, so the best epoch chosen is not the model kept."""
  if replicas <= 1:
    return 0
  import keras

  from components.trainers.models import layers_in_order
  found = [layer for layer in layers_in_order(model)
           if isinstance(layer, keras.layers.BatchNormalization)]
  for layer in found:
    layer.synchronized = True
  _log.info('%d BatchNormalization layer(s) compute their statistics over all '
            '%d replicas', len(found), replicas)
  return len(found)


def global_batch(batch_size: int, replicas: int) -> int:
  """`batch_size` rounded up to a multiple of the replica count, so every
  replica gets the same number of examples, at least one."""
  return math.ceil(batch_size / replicas) * replicas


def align_steps(steps: int, steps_per_execution: int) -> tuple[int, int]:
  """(steps per epoch, steps per execution) such that the first is a whole
  number of executions: Keras runs whole blocks, so the schedule must count
  them. Steps round up; an epoch shorter than a block runs as one block."""
  per_execution = max(1, min(steps_per_execution, steps))
  return math.ceil(steps / per_execution) * per_execution, per_execution
