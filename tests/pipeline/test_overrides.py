"""`--set key=value`: typed overrides, and the messages for bad keys and values."""

import pytest

from pipeline import config as config_lib
from pipeline import overrides


@pytest.mark.parametrize('assignment, getter, expected', [
    ('alexnet.epochs=3', lambda c: c.models['alexnet'].epochs, 3),
    ('models.vgg16.learning_rate=0.5', lambda c: c.models['vgg16'].learning_rate, 0.5),
    ('vgg16.horizontal_flip=false', lambda c: c.models['vgg16'].horizontal_flip, False),
    ('evaluation.accuracy_threshold=0.9', lambda c: c.evaluation.accuracy_threshold, 0.9),
    ('data.train_per_class=7', lambda c: c.data.train_per_class, 7),
    ('beam_args=--a=1,--b=2', lambda c: c.beam_args, ['--a=1', '--b=2']),
])
def test_set_overrides_typed_fields(assignment, getter, expected):
  config = config_lib.preset('full')
  overrides.apply(config, assignment)
  assert getter(config) == expected


@pytest.mark.parametrize('assignment, message', [
    ('alexnet.epoch=3', 'unknown setting'),
    ('resnet.epochs=3', 'unknown setting'),
    ('alexnet.epochs=three', 'expected a value of type int'),
    ('alexnet.horizontal_flip=maybe', 'expected a value of type bool'),
    ('alexnet', 'key=value'),
    ('data=1', 'unknown setting'),
])
def test_set_rejects_bad_keys_and_values(assignment, message):
  with pytest.raises(config_lib.ConfigError, match=message):
    overrides.apply(config_lib.preset('full'), assignment)


def test_set_uses_the_declared_type_not_the_preset_value():
  config = config_lib.preset('full')
  config.models['alexnet'].warmup_epochs = 2  # an int in a float field
  overrides.apply(config, 'alexnet.warmup_epochs=0.5')
  assert config.models['alexnet'].warmup_epochs == 0.5
