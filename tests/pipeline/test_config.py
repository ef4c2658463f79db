"""The typed configuration: presets and validation messages."""

import pytest

from pipeline import config as config_lib
from pipeline import overrides


def test_presets_share_models_and_quick_is_small():
  full, quick = config_lib.preset('full'), config_lib.preset('quick')
  assert set(full.models) == set(quick.models) == {'alexnet', 'vgg16'}
  assert full.data.train_per_class == 0 and 0 < quick.data.train_per_class <= 500
  assert all(t.epochs == 1 for t in quick.models.values())
  assert full.models['vgg16'].weights == 'imagenet'
  assert full.models['vgg16'].require_weights
  assert not quick.models['vgg16'].require_weights


def test_cpu_preset_is_all_the_data_with_the_measured_4_epoch_recipe():
  cpu, full = config_lib.preset('cpu'), config_lib.preset('full')
  config_lib.validate(cpu)
  assert cpu.data == full.data and cpu.evaluation == full.evaluation
  alexnet = cpu.models['alexnet']
  # The README's recipe: batch 64 at AdamW peak 1e-3 and weight decay 0.1,
  # BatchNorm offsets at 16x the rate and scales at 4x, no dropout, no crop
  # (the flip stays), whitened conv1, the image and its mirror averaged in
  # the exported model; images upsampled to 48 px; bfloat16 where the CPU
  # has it.
  assert alexnet.input_size == 48 and full.models['alexnet'].input_size == 32
  assert (alexnet.epochs, alexnet.batch_size, alexnet.optimizer) == (4, 64, 'adamw')
  assert alexnet.learning_rate * alexnet.batch_size / 256 == pytest.approx(1e-3)
  assert (alexnet.weight_decay, full.models['alexnet'].weight_decay) == (0.1, 0.05)
  assert (alexnet.offset_lr_factor, full.models['alexnet'].offset_lr_factor) == (16.0, 1.0)
  assert (alexnet.scale_lr_factor, full.models['alexnet'].scale_lr_factor) == (8.0, 1.0)
  assert (alexnet.dropout, alexnet.crop_padding, alexnet.warmup_epochs) == (0.0, 0, 0.4)
  assert alexnet.horizontal_flip
  assert alexnet.first_layer_init == 'whitening' and alexnet.mirror_average
  assert alexnet.policy == 'native_bfloat16' and cpu.models['vgg16'].policy == 'auto'
  full_alexnet = full.models['alexnet']
  assert full_alexnet.first_layer_init == 'random' and not full_alexnet.mirror_average
  assert full_alexnet.dropout == 0.5 and not cpu.models['vgg16'].mirror_average
  vgg16 = cpu.models['vgg16']
  assert (vgg16.input_size, vgg16.epochs, vgg16.head_epochs) == (32, 2, 1)
  assert vgg16.weights == 'imagenet' and not vgg16.require_weights


@pytest.mark.parametrize('assignment, message', [
    ('alexnet.epochs=-1', 'epochs must be >= 1'),
    ('evaluation.accuracy_threshold=1.5', r'accuracy_threshold must lie in \[0, 1\]'),
    ('vgg16.optimizer=rmsprop', 'optimizer must be sgd or adamw'),
    ('vgg16.input_size=50', 'multiple of 32'),
    ('data.validation_fraction=0', 'validation_fraction'),
    ('alexnet.first_layer_init=zeros', 'first_layer_init must be random or whitening'),
    ('alexnet.decay=step', 'decay must be cosine or linear'),
    ('vgg16.first_layer_init=whitening', 'needs weights=none'),
    ('alexnet.input_size=44', r'alexnet.input_size must be a multiple of 8 \(32, 40, 48'),
    ('alexnet.input_size=136', 'alexnet.input_size must be <= 128 for this model'),
])
def test_validate_names_the_bad_value(assignment, message):
  config = config_lib.preset('full')
  overrides.apply(config, assignment)
  with pytest.raises(config_lib.ConfigError, match=message):
    config_lib.validate(config)


def test_unknown_preset():
  with pytest.raises(config_lib.ConfigError, match='Unknown preset'):
    config_lib.preset('huge')
