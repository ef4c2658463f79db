"""Where VGG16's ImageNet weights come from: the Keras cache, a download, a
file the user names, or (with a loud warning) nowhere.

Called by `components.trainers.vgg16` (its `build` and the command line's
`preflight`); `components.trainers.models.build_vgg16` loads the file this
module resolves.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import keras

from components.errors import UserError

_LOG = logging.getLogger(__name__)

VGG16_NOTOP_FILE = 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5'
VGG16_NOTOP_URL = ('https://storage.googleapis.com/tensorflow/keras-applications/'
                   'vgg16/' + VGG16_NOTOP_FILE)
VGG16_NOTOP_MD5 = '6d6bbae143d832006294945121d1f1fc'  # as keras.applications


@dataclass(frozen=True)
class WeightsChoice:
  """Which VGG16 base weights a run uses; `origin` goes to logs."""
  path: str | None  # file to load, None = random init
  origin: str  # 'imagenet (<file>)', 'file <file>', 'random (asked for ...)', 'random'
  pretrained: bool


class WeightsUnavailable(UserError, RuntimeError):
  """The asked-for weights cannot be had; the message says how to fix it."""


def _keras_models_dir(cache_dir: str | None) -> str:
  home = cache_dir or os.environ.get('KERAS_HOME') or '~/.keras'
  return os.path.join(os.path.expanduser(home), 'models')


def resolve(spec: str, *, require: bool,
            cache_dir: str | None = None) -> WeightsChoice:
  """Turns `TrainerConfig.weights` into the weights file `build_vgg16` loads.

  Args:
    spec: 'none' (random init), 'imagenet' (the official no-top file, from the
      Keras cache or downloaded into it) or a path to a .h5/.weights.h5 file.
    require: with 'imagenet', raise WeightsUnavailable when the file cannot be
      had; otherwise warn loudly and fall back to random init.
    cache_dir: Keras home to use instead of $KERAS_HOME or ~/.keras; the file
      is looked for in `<cache_dir>/models/` and in `<cache_dir>/` itself.

  Raises:
    WeightsUnavailable: an explicit path that does not exist, or 'imagenet'
      unobtainable with require=True.
    ValueError: an unknown word.
  """
  word = spec.strip()
  if word.lower() == 'none':
    return WeightsChoice(None, 'random', False)
  if word.lower() != 'imagenet':
    if os.sep not in word and not word.endswith(('.h5', '.hdf5')):
      raise ValueError(f'Unknown VGG16 weights {spec!r}: use "none", "imagenet" '
                       'or the path of a .h5 / .weights.h5 file.')
    path = os.path.abspath(os.path.expanduser(word))
    if not os.path.isfile(path):
      raise WeightsUnavailable(f'VGG16 weights file {path} does not exist. Fix '
                               '`--set vgg16.weights=...` or use "none".')
    return WeightsChoice(path, f'file {path}', True)

  models_dir = _keras_models_dir(cache_dir)
  extra = ([os.path.expanduser(cache_dir)] if cache_dir else [] if os.environ.get(
      'KERAS_HOME') else ['/tmp/.keras/models'])  # Keras's pick when ~ is read-only
  for path in (os.path.join(d, VGG16_NOTOP_FILE) for d in [models_dir, *extra]):
    if os.path.isfile(path):
      return WeightsChoice(path, f'imagenet ({path})', True)
  try:  # into models_dir (get_file would use /tmp/.keras if it were missing)
    os.makedirs(models_dir, exist_ok=True)
    path = keras.utils.get_file(
        VGG16_NOTOP_FILE, VGG16_NOTOP_URL, cache_subdir='models',
        file_hash=VGG16_NOTOP_MD5, cache_dir=os.path.dirname(models_dir))
    return WeightsChoice(path, f'imagenet ({path})', True)
  except Exception as error:  # offline, proxy, disk: all mean "not here"
    reason = f'{type(error).__name__}: {error}'
  fix = (f'Download {VGG16_NOTOP_URL} and put it in {models_dir}/ under the name '
         f'{VGG16_NOTOP_FILE}, or pass `--set vgg16.weights=/path/file.h5`, '
         'or `--set vgg16.weights=none` to train from scratch.')
  if require:
    raise WeightsUnavailable(f'VGG16 ImageNet weights {VGG16_NOTOP_FILE} are not '
                             f'in {models_dir}/ and the download failed '
                             f'({reason}). {fix}')
  banner = '!' * 72
  _LOG.warning('\n%s\n!! VGG16 ImageNet weights UNAVAILABLE: training from '
               'RANDOM INIT.\n!! Download failed: %s\n!! %s\n%s',
               banner, reason, fix, banner)
  return WeightsChoice(None, f'random (asked for imagenet, unavailable: {reason})',
                       False)
