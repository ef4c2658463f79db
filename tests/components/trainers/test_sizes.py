"""Tests of components.trainers.sizes: the sides each network takes, and that
the configuration check and the model builders refuse the same ones with
the same words.

Run by pytest (`pytest tests/components/trainers`).
"""

from __future__ import annotations

import re

import pytest

from components.trainers import checks, models, sizes
from components.trainers.config import TrainerConfig


@pytest.mark.parametrize('module, rule', [
    ('components.trainers.alexnet', sizes.ALEXNET),
    ('components.trainers.vgg16', sizes.VGG16),
    ('my_package.vgg16', sizes.VGG16), ('my_package.alexnet', sizes.ALEXNET),
    ('my_package.my_vgg', sizes.ANY), ('my_package.my_alexnet', sizes.ANY)])
def test_the_rule_follows_the_trainer_module_name(module, rule):
  assert sizes.rule_for(module) is rule


def test_a_module_of_a_users_own_is_refused_no_side_a_network_here_takes():
  for side in (32, 48, 96, 160, 224, 512):  # AlexNet's up to 128, VGG16's past it
    config = TrainerConfig(module='my_package.my_vgg', input_size=side)
    assert not [p for p in checks.problems('mine', config) if 'input_size' in p]
  config = TrainerConfig(module='my_package.my_vgg', input_size=544)
  assert [p for p in checks.problems('mine', config) if 'input_size' in p]


@pytest.mark.parametrize('rule, good, bad', [
    (sizes.ALEXNET, [32, 40, 48, 128], [0, 24, 31, 36, 44, 136, 256, 48.0]),
    (sizes.VGG16, [32, 64, 96, 512], [0, 16, 48, 544])])
def test_sides(rule, good, bad):
  assert [sizes.problem(rule, side) for side in good] == [None] * len(good)
  assert all(sizes.problem(rule, side) for side in bad)


@pytest.mark.parametrize('name, build, side', [
    ('alexnet', models.build_alexnet, 44), ('alexnet', models.build_alexnet, 136),
    ('vgg16', models.build_vgg16, 48), ('vgg16', models.build_vgg16, 16)])
def test_config_and_builder_refuse_a_side_alike(name, build, side):
  config = TrainerConfig(module=f'components.trainers.{name}', input_size=side)
  said = [p for p in checks.problems(name, config) if 'input_size' in p]
  assert said == [f'{name}.input_size {sizes.problem(sizes.rule_for(config.module), side)}']
  with pytest.raises(ValueError, match=re.escape(said[0].split('.', 1)[1])):
    build(input_size=side)
