"""Each device plan a GPU worker uses, executed on emulated devices (CPU).

Each plan runs in its own process (`device_plan_child.py`: logical devices
exist only if made before TensorFlow starts): both Trainers train, are killed
mid their second epoch, resume, export; the exported `serving_default` is
compared with the trained in-memory model on PNG and JPEG bytes. The
2-replica plan goes through the real local pipeline (Evaluators, selector);
the others call `run_fn` over that run's Transform output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pipeline.config import cpu

pytestmark = pytest.mark.devices

CHILD = os.path.join(os.path.dirname(__file__), 'device_plan_child.py')
VGG16_SIZE = 96
# Serving (float32) against the trained model (its policy), same bytes: each
# probability within 0.1 (bfloat16 keeps ~3 significant digits: differences up
# to 0.037 were seen, 0.008 with 2 replicas, 0.002 with float16). The top class
# is not asserted: that bound already confines any flip to classes the trained
# model rated within 0.2 of each other, and a 2-step VGG16 is near uniform
# (CI saw 3 images in 20 flip between probabilities 0.0004 apart, 3 replicas).
PROBABILITY_TOLERANCE = 0.1
REPLICAS = {'one_device_bf16': 1, 'one_device_fp16': 1, 'two_replicas': 2,
            'three_replicas': 3}
# The `cpu` preset's AlexNet choices the 3-replica plan trains with.
CPU_CHOICES = ('first_layer_init', 'offset_lr_factor', 'scale_lr_factor',
               'mirror_average')
ALEXNET_STEPS = {'one_device_bf16': 32, 'one_device_fp16': 8}
POLICY = {'one_device_bf16': 'mixed_bfloat16', 'one_device_fp16': 'mixed_float16',
          'two_replicas': 'mixed_bfloat16', 'three_replicas': 'mixed_bfloat16'}


def _settings(weights: str, devices: str, alexnet: dict, **common) -> dict:
  """--set overrides of one plan: both models, two epochs, VGG16 at 96 px in
  two phases (head on the frozen base from `weights`, then full)."""
  both = {'epochs': 2, 'warmup_epochs': 0.5, 'devices': devices, **common}
  vgg16 = {'input_size': VGG16_SIZE, 'weights': weights, 'require_weights': True,
           'head_epochs': 1, 'batch_size': 4, 'steps_per_epoch': 2}
  return {f'{model}.{key}': value for model, values in (
      ('alexnet', {**both, **alexnet}), ('vgg16', {**both, **vgg16}))
          for key, value in values.items()}


def _cpu_choices() -> dict:
  preset = cpu().models['alexnet']
  return {key: getattr(preset, key) for key in CPU_CHOICES}


def _run(mode: str, tmp, plans: dict, **extra) -> dict:
  settings, out = tmp / 'settings.json', tmp / 'out.json'
  settings.write_text(json.dumps({'tmp': str(tmp), 'plans': plans, **extra}))
  done = subprocess.run([sys.executable, CHILD, mode, str(settings), str(out)],
                        capture_output=True, text=True, timeout=900,
                        env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'})
  assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
  return json.loads(out.read_text())


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
  return str(tmp_path_factory.mktemp('weights') / 'vgg16_base.weights.h5')


@pytest.fixture(scope='module')
def pipeline_plans(tmp_path_factory, weights):
  """2 replicas through the real local pipeline: MirroredStrategy, bf16, and
  the compile settings the plan picks (no XLA, 1 step per execution)."""
  return _run('pipeline', tmp_path_factory.mktemp('two'), {
      'two_replicas': _settings(weights, 'emulated:2', {'batch_size': 16})})


@pytest.fixture(scope='module')
def single_device_plans(tmp_path_factory, weights, pipeline_plans):
  """One device, XLA, 32 steps per execution, bf16 then fp16 (loss scaling).
  An epoch shorter than 32 steps runs as one execution: AlexNet's 32 steps
  in bf16, 8 in fp16 (to save time), VGG16's 2."""
  return _run('run_fn', tmp_path_factory.mktemp('one'), {
      'one_device_bf16': _settings(weights, 'emulated:1', {
          'batch_size': 2, 'steps_per_epoch': ALEXNET_STEPS['one_device_bf16']}),
      'one_device_fp16': _settings(weights, 'emulated:1', {
          'batch_size': 2, 'steps_per_epoch': ALEXNET_STEPS['one_device_fp16']},
                                   policy='mixed_float16')},
      transform=pipeline_plans['two_replicas']['transform'])


@pytest.fixture(scope='module')
def three_replica_plans(tmp_path_factory, weights, pipeline_plans):
  """3 replicas: AlexNet's batch 16, VGG16's 4 and the validation split's 20
  images do not split evenly by default. AlexNet takes the `cpu` preset's
  choices: conv1 starts whitening the training patches (set inside the
  strategy's scope, on mirrored variables), BatchNorm offsets and scales
  step at the preset's multiples of the rate (its optimizer killed, restored
  and resumed with the rest), and its export serves the mean of each image's
  and its mirror's answers. The choices are read from the preset, not copied."""
  return _run('run_fn', tmp_path_factory.mktemp('three'), {
      'three_replicas': _settings(weights, 'emulated:3', {
          'batch_size': 16, **_cpu_choices()})},
      transform=pipeline_plans['two_replicas']['transform'])


@pytest.fixture(params=list(REPLICAS))
def plan(request):
  fixture = {1: 'single_device_plans', 2: 'pipeline_plans',
             3: 'three_replica_plans'}[REPLICAS[request.param]]
  return request.param, request.getfixturevalue(fixture)[request.param]


def test_each_trainer_was_killed_once_then_resumed_and_exported(plan):
  name, results = plan
  assert results['killed'] == ['alexnet', 'vgg16_cifar10'], results['kills']
  for model, phases in (('alexnet', ['full', 'full']),
                        ('vgg16', ['head', 'full'])):
    found = results['models'][model]
    info = found['info']
    assert [row['phase'] for row in found['history']] == phases
    assert info['epochs_run'] == 2
    assert f'{POLICY[name]}, {REPLICAS[name]} replica(s)' in info['device']
    assert info['config']['batch_size'] % REPLICAS[name] == 0
    assert info['steps_per_epoch'] % info['steps_per_execution'] == 0
    assert not os.path.exists(info['checkpoint_dir'])  # removed once exported
    # The best epoch's logged val_accuracy is the kept weights' through
    # fit's own validation path (the compiled model evaluated again), to the
    # image. Not asserted: the eager answer (`model(images)`), recorded
    # only. Outside the compiled path a near-tie may flip: 1 of 20 images on
    # one device in bfloat16, 2 in float16 (one CI run each, a model near
    # chance after a few steps) and 2 with 3 replicas; the served answers
    # are held to the trained model's by the serving test below.
    validation = found['validation']
    assert validation['images'] == info['validation_images']
    assert abs(validation['logged'] - validation['evaluated']) < (
        0.5 / validation['images']), validation
  print(f'{name}: {results["seconds"]:.0f} s; validation ' + ', '.join(
      f'{m}: {results["models"][m]["validation"]}' for m in ('alexnet', 'vgg16')))


def test_the_cpu_presets_choices_are_set_where_asked(three_replica_plans):
  """The preset's choices reach the Trainer, and the kernel run_fn set is
  recorded as the start of AlexNet's weights; that it whitens is
  tests/components/trainers/test_whitening.py's to check."""
  info = three_replica_plans['three_replicas']['models']['alexnet']['info']
  assert info['weights_origin'] == 'random; conv1 starts whitening training patches'
  assert info['config']['first_layer_init'] == 'whitening'
  assert info['optimizer'] == 'OffsetRateAdamW'  # test_offset_rate.py: its step
  assert {key: info['config'][key] for key in CPU_CHOICES} == _cpu_choices()


def test_the_compile_settings_are_those_of_the_plan(plan):
  name, results = plan
  alexnet = results['models']['alexnet']['info']
  vgg16 = results['models']['vgg16']['info']
  if REPLICAS[name] == 1:
    assert 'XLA True, 32 step(s) per execution' in alexnet['device']
    assert alexnet['steps_per_execution'] == ALEXNET_STEPS[name]
    assert vgg16['steps_per_execution'] == 2  # its whole 2-step epoch
  else:
    assert 'XLA False, 1 step(s) per execution' in alexnet['device']
    assert alexnet['config']['batch_size'] == 16 + (-16 % REPLICAS[name])


def test_a_resumed_epoch_continues_the_data_order_never_replays_epoch_1(plan):
  """Batch checksums by 'epoch/step', per `training_batches` call: AlexNet
  killed (from epoch 0) then resumed (from epoch 1); VGG16's head phase
  (epoch 0), its full phase killed, then resumed (both from epoch 1)."""
  _, results = plan
  calls = results['batches']
  assert [c['first_epoch'] for c in calls] == [0, 1, 0, 1, 1]
  for first, killed, resumed in ((calls[0], calls[0], calls[1]),
                                 (calls[2], calls[3], calls[4])):
    first, killed, resumed = first['sums'], killed['sums'], resumed['sums']
    assert min(int(key.split('/')[0]) for key in resumed) == 1
    again = sorted(set(killed) & set(resumed))
    assert '1/0' in again  # the killed run had started epoch 2 (index 1)
    assert [killed[k] for k in again] == [resumed[k] for k in again]
    assert resumed['1/0'] != first['0/0']  # epoch 2's batch, not epoch 1's


def test_the_served_model_is_float32_and_answers_as_the_trained_one(plan):
  _, results = plan
  for model in ('alexnet', 'vgg16'):
    serving = results['models'][model]['serving']
    assert serving['low_precision_ops'] == []
    for fmt in ('PNG', 'JPEG'):
      found = serving[fmt]
      assert found['dtype'] == 'float32'
      assert found['max_sum_error'] < 1e-5
      assert found['max_probability_difference'] <= PROBABILITY_TOLERANCE, (
          model, found)


def test_the_mirror_average_is_served_where_asked(three_replica_plans):
  served = three_replica_plans['three_replicas']['models']['alexnet']['serving']
  for fmt in ('PNG', 'JPEG'):
    # Measured: 0.008 from the in-memory mirror mean, 0.09-0.15 from the plain
    # answer (the mirror moves a probability by 0.09-0.15).
    found = served[fmt]
    assert found['mirror_effect'] > 0.02, found
    assert found['max_probability_difference'] < found['difference_from_plain'] / 4, found


def test_the_pipeline_plan_evaluated_and_selected_as_usual(pipeline_plans):
  results = pipeline_plans['two_replicas']
  assert set(results['states'].values()) <= {'COMPLETE', 'CACHED'}
  for node in ('Trainer_alexnet', 'Trainer_vgg16', 'Evaluator_alexnet',
               'Evaluator_vgg16', 'ModelSelector'):
    assert results['states'][node] in ('COMPLETE', 'CACHED')
  assert {c['name'] for c in results['decision']['candidates']} == {
      'alexnet', 'vgg16'}
