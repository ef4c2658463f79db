"""The training recipe: augmentation, schedule, phases, precision policy, resume."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from components.trainers import augment, checks, data, device, loop, schedule
from pipeline.config import TrainerConfig


def _images(n=8, seed=0):
  return np.random.default_rng(seed).normal(size=(n, 32, 32, 3)).astype('float32')


def test_augmentation_changes_training_batches_never_evaluation_batches():
  layer = augment.BatchAugment(padding=4, flip=True, seed=1)
  x = _images()
  trained = np.asarray(layer(x, training=True))
  assert trained.shape == x.shape
  assert not np.allclose(trained, x)
  np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
  np.testing.assert_array_equal(np.asarray(layer(x)), x)
  again = np.asarray(layer(x, training=True))
  assert not np.allclose(again, trained)  # fresh randomness on every batch


def test_crop_keeps_pixels_and_only_shifts_them():
  x = _images(4)
  out = np.asarray(augment.random_crop_flip(x, 3, padding=4, flip=False))
  for original, cropped in zip(x, out):
    found = False
    for dy in range(-4, 5):
      for dx in range(-4, 5):
        shifted = np.zeros_like(original)
        src = original[max(0, dy):32 + min(0, dy), max(0, dx):32 + min(0, dx)]
        shifted[max(0, -dy):max(0, -dy) + src.shape[0],
                max(0, -dx):max(0, -dx) + src.shape[1]] = src
        found |= np.allclose(shifted, cropped, atol=1e-5)
    assert found


def test_flip_mirrors_whole_images_exactly_about_half_of_them():
  x = _images(64)
  out = np.asarray(augment.random_crop_flip(x, 5, padding=0, flip=True))
  same = [np.array_equal(o, i) for o, i in zip(out, x)]
  mirrored = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, x)]
  assert all(a or b for a, b in zip(same, mirrored))
  assert 16 <= sum(mirrored) <= 48


def test_crop_and_flip_together_equal_pad_slice_and_mirror_exactly():
  x = _images(8)
  out = np.asarray(augment.random_crop_flip(x, 2, padding=4, flip=True))
  for original, augmented in zip(x, out):
    padded = np.pad(original, ((4, 4), (4, 4), (0, 0)))
    candidates = [crop[:, ::-1] if mirror else crop
                  for dy in range(9) for dx in range(9)
                  for crop in [padded[dy:dy + 32, dx:dx + 32]]
                  for mirror in (False, True)]
    assert any(np.array_equal(augmented, c) for c in candidates)


def test_rotation_is_optional_and_bounded():
  x = np.zeros((2, 32, 32, 3), 'float32')
  x[:, 16, :, :] = 1.0  # a horizontal line
  out = np.asarray(augment.random_crop_flip(x, 0, padding=0, flip=False,
                                            rotation_degrees=10.0))
  assert out.shape == x.shape and not np.allclose(out, x)
  assert abs(out.sum() - x.sum()) / x.sum() < 0.2  # rotated, not destroyed


def test_schedule_warms_up_linearly_then_decays_to_zero():
  lr = schedule.warmup_decay(0.4, total_steps=1000, warmup_steps=100)
  values = np.array([float(lr(step)) for step in range(0, 1001, 10)])
  assert values[0] == pytest.approx(0.0, abs=1e-7)
  assert values[5] == pytest.approx(0.2, rel=1e-3)  # halfway through warm-up
  assert values[10] == pytest.approx(0.4, rel=1e-3)  # peak at the end of warm-up
  assert np.all(np.diff(values[:11]) > 0) and np.all(np.diff(values[10:]) <= 1e-9)
  assert values[-1] == pytest.approx(0.0, abs=1e-6)
  assert values[55] == pytest.approx(0.2, rel=1e-2)  # cosine midpoint


@pytest.mark.parametrize('warmup', [100, 0])
def test_linear_decay_is_a_triangle_down_to_zero(warmup):
  lr = schedule.warmup_decay(0.4, total_steps=1000, warmup_steps=warmup,
                             decay='linear')
  values = np.array([float(lr(step)) for step in range(0, 1001, 10)])
  expected = 0.4 * np.minimum(np.arange(0, 1001, 10) / warmup if warmup else 1.0,
                              (1000 - np.arange(0, 1001, 10)) / (1000 - warmup))
  np.testing.assert_allclose(values, expected, atol=1e-6)
  assert values.max() == pytest.approx(0.4) and values[-1] == 0.0
  # A checkpointed optimizer rebuilds the same schedule from its config.
  again = type(lr).from_config(lr.get_config())
  assert float(again(550)) == pytest.approx(float(lr(550)))


def test_an_unknown_decay_is_refused():
  with pytest.raises(ValueError, match="Unknown decay 'step'"):
    schedule.warmup_decay(0.4, 1000, 100, decay='step')


def test_learning_rate_scales_with_batch_size():
  assert schedule.peak_learning_rate(0.1, 256) == pytest.approx(0.1)
  assert schedule.peak_learning_rate(0.1, 512) == pytest.approx(0.2)
  assert schedule.peak_learning_rate(0.1, 64) == pytest.approx(0.025)


def test_weight_decay_spares_biases_and_norm_parameters():
  optimizer = schedule.make_optimizer('sgd', 0.1, momentum=0.9, weight_decay=5e-3)
  model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3),
                            keras.layers.BatchNormalization()])
  optimizer.build(model.trainable_variables)
  decayed = {v.path for v in model.trainable_variables
             if optimizer._use_weight_decay(v)}
  assert any('kernel' in p for p in decayed)
  assert not any(('bias' in p or 'gamma' in p or 'beta' in p) for p in decayed)


@pytest.mark.parametrize('capabilities, policy', [
    ([], 'float32'), ([(9, 0)], 'mixed_bfloat16'), ([(8, 0), (8, 6)], 'mixed_bfloat16'),
    ([(7, 5)], 'mixed_float16'), ([(8, 0), (7, 0)], 'mixed_float16')])
def test_precision_policy_follows_the_devices(capabilities, policy):
  assert device.choose_policy(capabilities) == policy


@pytest.mark.parametrize('flags, capabilities, policy', [
    ('fpu sse avx512f avx512_bf16 avx512_vnni', [], 'mixed_bfloat16'),
    ('fpu amx_bf16 amx_tile', [], 'mixed_bfloat16'),
    ('fpu sse avx2 avx512f avx512_vnni', [], 'float32'),
    ('fpu avx2', [(8, 0)], 'mixed_bfloat16'),
    ('fpu avx512_bf16', [(7, 5)], 'mixed_float16'),  # a GPU decides, as auto
    (None, [], 'float32'),  # no /proc/cpuinfo (macOS, Windows)
])
def test_native_bfloat16_asks_the_cpu_where_there_is_no_gpu(
    tmp_path, flags, capabilities, policy):
  cpuinfo = tmp_path / 'cpuinfo'
  if flags is not None:  # two CPUs, as Linux lists them; the first decides
    cpuinfo.write_text(
        f'processor\t: 0\nmodel name\t: X\nflags\t\t: {flags}\n\n'
        'processor\t: 1\nflags\t\t: fpu\n')
  assert device.resolve_policy(
      'native_bfloat16', capabilities, str(cpuinfo)) == policy
  assert device.resolve_policy('auto', capabilities, str(cpuinfo)) == (
      device.choose_policy(capabilities))
  assert device.resolve_policy('float32', [(9, 0)], str(cpuinfo)) == 'float32'


def test_device_plan_for_native_bfloat16_follows_this_cpu():
  """The `cpu` preset's AlexNet setting, planned on this machine: bfloat16
  exactly when its /proc/cpuinfo lists a bfloat16 flag."""
  plan = device.plan('cpu', policy='native_bfloat16')
  assert plan.policy == ('mixed_bfloat16' if device.cpu_has_native_bfloat16()
                         else 'float32')
  assert plan.replicas == 1 and not plan.jit_compile


def test_device_plan_on_this_machine_is_cpu_float32():
  plan = device.plan()
  assert plan.policy == 'float32' and not plan.jit_compile
  assert plan.replicas == 1 and plan.steps_per_execution == 1
  assert plan.strategy is device.plan('cpu').strategy  # one per process
  assert device.gpu_capabilities('tensorflow') == []


@pytest.mark.parametrize('spec, parsed', [
    ('auto', ('auto', 0)), ('cpu', ('cpu', 0)), ('emulated:3', ('emulated', 3)),
    (' Emulated:1 ', ('emulated', 1))])
def test_device_settings_parse(spec, parsed):
  assert device.parse_devices(spec) == parsed


@pytest.mark.parametrize('spec', ['gpu', 'emulated', 'emulated:0', 'cpu:2', 'emulated:x'])
def test_unknown_device_settings_are_refused(spec):
  with pytest.raises(ValueError, match='auto, cpu or emulated:N'):
    device.parse_devices(spec)


@pytest.mark.parametrize('replicas', [1, 2, 3, 4, 8])
def test_batches_split_evenly_and_steps_fill_whole_executions(replicas):
  for batch in (1, 16, 64, 128, 256):
    size = device.global_batch(batch, replicas)
    assert size % replicas == 0 and batch <= size < batch + replicas
  assert device.align_steps(40, 32) == (64, 32)
  assert device.align_steps(351, 32) == (352, 32)
  assert device.align_steps(64, 32) == (64, 32)
  assert device.align_steps(5, 32) == (5, 5)
  assert device.align_steps(7, 1) == (7, 1)


def test_each_epoch_has_its_own_data_order_so_a_resume_continues():
  examples = tf.data.Dataset.from_tensor_slices(
      (tf.range(10, dtype=tf.float32), tf.range(10))).cache()

  def firsts(first_epoch):
    batches = data.training_batches(examples, num_examples=10, batch_size=4,
                                    steps=3, seed=42, first_epoch=first_epoch)
    return [b[0].numpy().tolist() for b in batches.take(6)]
  from_start, resumed = firsts(0), firsts(1)
  assert from_start[3:] == resumed[:3]  # epoch 1 is epoch 1, however reached
  assert from_start[:3] != resumed[:3]


def test_every_seed_the_settings_allow_shuffles_as_the_trainer_seeds_it():
  """The Trainer sets the global seeds from `seed`, then shuffles per epoch
  with a tensor op seed: TensorFlow fails on that pair when the global seed is
  0 mod 2**31 - 1, which the settings' bounds keep out."""
  examples = tf.data.Dataset.from_tensor_slices(
      (tf.range(10, dtype=tf.float32), tf.range(10)))
  low, high = checks.BOUNDS['seed']
  try:
    for seed in (low, high):
      keras.utils.set_random_seed(seed)
      batches = data.training_batches(examples, num_examples=10, batch_size=5,
                                      steps=2, seed=seed)
      assert sorted(np.concatenate([x for x, _ in batches.take(2)]).tolist()) == list(range(10))
    keras.utils.set_random_seed(high + 1)
    with pytest.raises(TypeError, match='as a Python `bool`'):
      data.training_batches(examples, num_examples=10, batch_size=5, steps=2,
                            seed=high + 1)
  finally:
    keras.utils.set_random_seed(42)


def test_validation_pads_its_last_batch_with_weight_zero_examples():
  examples = tf.data.Dataset.from_tensor_slices(
      (tf.range(10, dtype=tf.float32), tf.range(10)))
  batches = list(data.evaluation_batches(examples, 4, num_examples=10))
  assert [len(x) for x, _, _ in batches] == [4, 4, 4]
  weights = np.concatenate([w.numpy() for _, _, w in batches])
  assert weights.tolist() == [1.0] * 10 + [0.0] * 2


def test_the_logged_validation_accuracy_leaves_out_the_padding():
  # 5,000 validation images in batches of 256 pad with 120 copies of the
  # first; here 10 in batches of 8 pad with 6. The model answers class 0 for
  # everything; only the first image (the one copied) is of class 0.
  labels = np.r_[0, np.ones(9, int)]
  examples = tf.data.Dataset.from_tensor_slices(
      (_images(10), tf.one_hot(labels, 2)))
  inputs = keras.Input((32, 32, 3))
  model = keras.Model(inputs, keras.layers.Dense(2, activation='softmax',
      kernel_initializer='zeros', bias_initializer=keras.initializers.Constant(
          [1.0, 0.0]))(keras.layers.Flatten()(inputs)))
  config = TrainerConfig(optimizer='sgd', learning_rate=1e-12, weight_decay=0.0)
  loop.compile_model(model, config, peak_lr=1e-12, total_steps=1, warmup_steps=0)
  history = model.fit(examples.batch(5).take(1), epochs=1, verbose=0,
                      validation_data=data.evaluation_batches(
                          examples, 8, num_examples=10))
  assert history.history['val_accuracy'] == [pytest.approx(0.1)]  # 7/16 unweighted


def test_epoch_seeds_make_augmentation_a_function_of_the_epoch():
  layer = augment.BatchAugment(padding=4, flip=True, seed=1)
  model = keras.Sequential([keras.Input((32, 32, 3)), layer])
  seeds, x = loop.EpochSeeds(model), _images(4)
  seeds.on_epoch_begin(2)
  third = np.asarray(layer(x, training=True))
  seeds.on_epoch_begin(0)
  first = np.asarray(layer(x, training=True))
  seeds.on_epoch_begin(2)
  np.testing.assert_array_equal(np.asarray(layer(x, training=True)), third)
  assert not np.array_equal(first, third)


def _tiny_model():
  base = keras.Sequential([keras.Input((32, 32, 3)),
                           keras.layers.Conv2D(4, 3, name='c1'),
                           keras.layers.GlobalAveragePooling2D()], name='base')
  inputs = keras.Input((32, 32, 3))
  outputs = keras.layers.Dense(10, activation='softmax', name='head')(
      base(inputs, training=False))
  return keras.Model(inputs, outputs)


def _batches(n=64, batch=16):
  x = _images(n)
  y = keras.utils.to_categorical(np.arange(n) % 10, 10)
  train = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).repeat()
  val = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)
  return train, val, n // batch


def _config(**kwargs):
  defaults = dict(epochs=3, batch_size=16, learning_rate=0.5, warmup_epochs=0,
                  early_stopping_patience=0)
  return TrainerConfig(**{**defaults, **kwargs})


def test_head_phase_freezes_the_base_then_full_phase_trains_it(tmp_path):
  model = _tiny_model()
  base_before = [w.copy() for w in model.get_layer('base').get_weights()]
  head_before = [w.copy() for w in model.get_layer('head').get_weights()]
  train, val, steps = _batches()
  config = _config(epochs=2, head_epochs=1)
  assert [p[0] for p in loop.phases(config, 'base', 0.1)] == ['head', 'full']
  assert [p[0] for p in loop.phases(config, None, 0.1)] == ['full']

  class Spy(keras.callbacks.Callback):
    def __init__(self):
      super().__init__()
      self.after_head = None
  frozen_snapshots = []
  original = loop.EpochLog.on_epoch_end

  def record(self, epoch, logs=None):
    original(self, epoch, logs)
    frozen_snapshots.append((self.phase, [w.copy() for w in
                             model.get_layer('base').get_weights()],
                             [w.copy() for w in model.get_layer('head').get_weights()]))
  loop.EpochLog.on_epoch_end = record
  try:
    loop.train(model, config, lambda epoch: train, steps, val, frozen_layer='base',
               checkpoint_dir=str(tmp_path / 'ckpt'), run_dir=str(tmp_path / 'run'))
  finally:
    loop.EpochLog.on_epoch_end = original
  (phase1, base1, head1), (phase2, base2, _) = frozen_snapshots
  assert (phase1, phase2) == ('head', 'full')
  assert all(np.array_equal(a, b) for a, b in zip(base_before, base1))
  assert not all(np.array_equal(a, b) for a, b in zip(head_before, head1))
  assert not all(np.array_equal(a, b) for a, b in zip(base1, base2))


def test_a_killed_training_resumes_at_its_last_finished_epoch(tmp_path):
  os.makedirs(tmp_path / 'run', exist_ok=True)
  train, val, steps = _batches()
  config = _config(epochs=3)

  class Kill(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
      if epoch == 1:
        raise KeyboardInterrupt('killed after epoch 2')
  original_callbacks = keras.callbacks.TensorBoard
  keras.callbacks.TensorBoard = lambda log_dir: Kill()
  try:
    with pytest.raises(KeyboardInterrupt):
      loop.train(_tiny_model(), config, lambda epoch: train, steps, val, frozen_layer=None,
                 checkpoint_dir=str(tmp_path / 'ckpt'), run_dir=str(tmp_path / 'run'))
  finally:
    keras.callbacks.TensorBoard = original_callbacks
  with open(tmp_path / 'ckpt' / 'history.json') as f:
    assert len(json.load(f)) == 2
  epochs_run = []

  class Count(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
      epochs_run.append(epoch)
  keras.callbacks.TensorBoard = lambda log_dir: Count()
  try:
    log = loop.train(_tiny_model(), config, lambda epoch: train, steps, val, frozen_layer=None,
                     checkpoint_dir=str(tmp_path / 'ckpt'), run_dir=str(tmp_path / 'run2'))
  finally:
    keras.callbacks.TensorBoard = original_callbacks
  assert epochs_run == [2]  # only the third epoch ran again
  assert [r['epoch'] for r in log.rows] == [1, 2, 3]
  assert os.path.exists(tmp_path / 'ckpt' / 'full.done.weights.h5')
