"""Tests of components.trainers.vgg16_weights: where VGG16's ImageNet weights
come from (cache, download, a named file) and what a user reads when they
cannot be had.

Run by pytest (`pytest tests/components/trainers`); never touches the network
(the download is replaced by a failing or a copying stand-in).
"""

from __future__ import annotations

import logging
import os

import keras
import pytest
from keras.src.applications import vgg16 as keras_vgg16

from components.trainers import vgg16_weights


@pytest.fixture
def offline(monkeypatch):
  calls = []

  def fail(*args, **kwargs):
    calls.append((args, kwargs))
    raise Exception('URL fetch failure: offline (test)')

  monkeypatch.setattr(keras.utils, 'get_file', fail)
  return calls


def test_imagenet_required_but_unobtainable_says_where_to_put_it(tmp_path, offline):
  with pytest.raises(vgg16_weights.WeightsUnavailable) as raised:
    vgg16_weights.resolve('imagenet', require=True, cache_dir=str(tmp_path))
  message = str(raised.value)
  assert vgg16_weights.VGG16_NOTOP_FILE in message
  assert str(tmp_path / 'models') in message
  assert '--set vgg16.weights=none' in message and 'offline (test)' in message
  (args, kwargs), = offline  # tried exactly Keras's own download
  assert keras_vgg16.WEIGHTS_PATH_NO_TOP in args + tuple(kwargs.values())
  assert kwargs['file_hash'] == '6d6bbae143d832006294945121d1f1fc'
  assert kwargs['cache_subdir'] == 'models'


def test_imagenet_optional_falls_back_to_random_loudly(tmp_path, offline, caplog):
  with caplog.at_level(logging.WARNING):
    choice = vgg16_weights.resolve('imagenet', require=False,
                                          cache_dir=str(tmp_path))
  assert choice.path is None and not choice.pretrained
  assert choice.origin.startswith('random') and 'imagenet' in choice.origin
  warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
  assert warnings and 'RANDOM' in warnings[0].getMessage()
  assert warnings[0].getMessage().count('\n') >= 4


@pytest.mark.parametrize('where', ['cache_dir', 'KERAS_HOME'])
def test_imagenet_found_in_cache_without_download(tmp_path, offline, monkeypatch,
                                                  where):
  cached = tmp_path / 'models' / vgg16_weights.VGG16_NOTOP_FILE
  cached.parent.mkdir()
  cached.write_bytes(b'not checked here')
  if where == 'KERAS_HOME':
    monkeypatch.setenv('KERAS_HOME', str(tmp_path))
  choice = vgg16_weights.resolve(
      'imagenet', require=True,
      cache_dir=str(tmp_path) if where == 'cache_dir' else None)
  assert choice == vgg16_weights.WeightsChoice(str(cached), f'imagenet ({cached})', True)
  assert not offline


def test_imagenet_download_result_is_used(tmp_path, monkeypatch):
  def fake_get_file(fname, origin, **kwargs):
    path = os.path.join(kwargs['cache_dir'], kwargs['cache_subdir'], fname)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, 'wb').close()
    return path

  monkeypatch.setattr(keras.utils, 'get_file', fake_get_file)
  choice = vgg16_weights.resolve('imagenet', require=True,
                                        cache_dir=str(tmp_path))
  assert choice.pretrained and choice.path == str(
      tmp_path / 'models' / vgg16_weights.VGG16_NOTOP_FILE)


@pytest.mark.parametrize('require', [True, False])
def test_explicit_paths_and_words(tmp_path, offline, require):
  missing = str(tmp_path / 'missing.weights.h5')
  with pytest.raises(vgg16_weights.WeightsUnavailable, match='missing.weights.h5'):
    vgg16_weights.resolve(missing, require=require)
  present = tmp_path / 'mine.h5'
  present.write_bytes(b'')
  assert vgg16_weights.resolve(str(present), require=require) == \
      vgg16_weights.WeightsChoice(str(present), f'file {present}', True)
  assert vgg16_weights.resolve('none', require=require) == \
      vgg16_weights.WeightsChoice(None, 'random', False)
  with pytest.raises(ValueError):
    vgg16_weights.resolve('imagenett', require=require)
  assert not offline
