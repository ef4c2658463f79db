"""`cifar10-tfx predict IMAGE ...`: classify image files with a pushed model.

Called by `pipeline/cli.py`. Loads the SavedModel (default: the newest
version under ./serving_model/cifar10) and feeds each file's bytes, as a
serialized tf.Example, to its `serving_default` signature, which decodes and
resizes PNG or JPEG up to `components.image_header.MAX_IMAGE_SIDE` pixels a
side. Only regular files of at most `MAX_IMAGE_BYTES` are read, and their
header is checked here too (a model exported before the graph checked it
would decode any size). A file that cannot be classified gets one line on
stderr and the others still run; the exit status is 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys

from components import image_header
from pipeline import config as config_lib
from pipeline.commands import UserError, prepare_imports

MAX_IMAGE_BYTES = 20_000_000  # a larger file is refused unread

# Magic numbers of the formats the serving graph decodes (tf.io.decode_image).
SIGNATURES = ((b'\x89PNG\r\n\x1a\n', 'PNG'), (b'\xff\xd8\xff', 'JPEG'),
              (b'GIF87a', 'GIF'), (b'GIF89a', 'GIF'), (b'BM', 'BMP'))


def register(commands) -> None:
  parser = commands.add_parser(
      'predict', help='classify image files with a pushed model',
      description='Print the top classes and their probabilities for each '
      'image file (PNG or JPEG, any size), using a pushed SavedModel.')
  parser.add_argument('images', nargs='+', metavar='IMAGE',
                      help='image files to classify')
  serving = config_lib.ServingConfig()
  parser.add_argument('--model', metavar='DIR',
                      help='a model version folder (serving_model/cifar10/3) '
                      'or a folder of numbered versions (newest is used); '
                      f'default ./{serving.directory}/{serving.model_name}')
  parser.add_argument('--top-k', type=int, default=3, metavar='K',
                      help='classes to show per image (default 3)')
  parser.set_defaults(func=main)


def _versions(folder: str) -> list[int]:
  from components.push import versions
  return [v for v in versions(folder)
          if os.path.exists(os.path.join(folder, str(v), 'saved_model.pb'))]


def resolve_model(path: str | None) -> str:
  """The SavedModel folder to load: `path` itself, or its newest version."""
  serving = config_lib.ServingConfig()
  given = path or os.path.join(serving.directory, serving.model_name)
  if not os.path.isdir(given):
    hint = ('' if path else ' Run `cifar10-tfx run` first (it pushes there), '
            'or pass --model DIR.')
    raise UserError(f'No model folder at {os.path.abspath(given)}.{hint}')
  if os.path.exists(os.path.join(given, 'saved_model.pb')):
    return given
  for folder in (given, os.path.join(given, serving.model_name)):
    if os.path.isdir(folder) and _versions(folder):
      return os.path.join(folder, str(_versions(folder)[-1]))
  raise UserError(f'No SavedModel in {os.path.abspath(given)}: expected '
                  'saved_model.pb there, or numbered version folders (1/, 2/ '
                  '...) holding one.')


def read_image(path: str) -> bytes:
  """The file's bytes; ValueError with the reason if it is not an image."""
  if not os.path.exists(path):
    raise ValueError('no such file')
  if os.path.isdir(path):
    raise ValueError('is a folder, not an image file')
  info = os.stat(path)
  if not stat.S_ISREG(info.st_mode):
    raise ValueError('not a regular file (a FIFO, device or socket)')
  too_big = ValueError(f'larger than {MAX_IMAGE_BYTES} bytes, not a photo to '
                       'classify')
  if info.st_size > MAX_IMAGE_BYTES:
    raise too_big
  with open(path, 'rb') as f:
    data = f.read(MAX_IMAGE_BYTES + 1)
  if len(data) > MAX_IMAGE_BYTES:
    raise too_big
  if not data:
    raise ValueError('empty file, not an image')
  if not any(data.startswith(magic) for magic, _ in SIGNATURES):
    raise ValueError(f'not an image (expected PNG or JPEG; the file starts '
                     f'with {data[:12]!r})')
  image_header.check(data)
  return data


def _example(data: bytes) -> bytes:
  import tensorflow as tf
  feature = tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))
  return tf.train.Example(features=tf.train.Features(
      feature={'image': feature})).SerializeToString()


def classify(serve, data: bytes, top_k: int) -> list[tuple[str, float]]:
  """The top-k (class name, probability) of one encoded image."""
  import numpy as np
  import tensorflow as tf
  out = serve(examples=tf.constant([_example(data)]))
  probabilities = out['probabilities'].numpy()[0]
  names = list(config_lib.CLASS_NAMES)
  if len(names) != len(probabilities):
    names = [f'class {i}' for i in range(len(probabilities))]
  names[int(out['class_ids'].numpy()[0])] = out['classes'].numpy()[0].decode()
  order = np.argsort(-probabilities)[:top_k]
  return [(names[i], float(probabilities[i])) for i in order]


def _decode_reason(message: str) -> str:
  """TensorFlow's one informative line, e.g. 'Invalid PNG. Failed to ...'."""
  noise = ('Graph execution error', 'Detected at node', '<stack traces', '[[')
  refused = message.find('the image header declares')
  if refused >= 0:
    return message[refused:message.find(':', refused)]
  lines = [line.strip() for line in message.splitlines()]
  useful = [line for line in lines if line and not line.startswith(noise)]
  return (useful or ['unknown error'])[0][:160]


def main(args: argparse.Namespace) -> int:
  if not 1 <= args.top_k <= len(config_lib.CLASS_NAMES):
    raise UserError(f'--top-k must lie between 1 and '
                    f'{len(config_lib.CLASS_NAMES)}, got {args.top_k}.')
  folder = resolve_model(args.model)
  prepare_imports()
  import tensorflow as tf
  try:
    serve = tf.saved_model.load(folder).signatures['serving_default']
  except (OSError, KeyError, ValueError) as error:
    raise UserError(f'Cannot load a serving model from {folder}: '
                    f'{str(error).splitlines()[0]}') from None
  info_path = os.path.join(folder, 'assets.extra', 'model_info.json')
  name = ''
  if os.path.exists(info_path):
    with open(info_path) as f:
      name = json.load(f).get('model_name', '')
  print(f'Model: {folder}' + (f' ({name})' if name else ''))
  failed = 0
  for path in args.images:
    try:
      top = classify(serve, read_image(path), args.top_k)
    except ValueError as error:
      failed += 1
      print(f'{path}: {error}', file=sys.stderr)
      continue
    except tf.errors.InvalidArgumentError as error:
      failed += 1
      reason = _decode_reason(error.message or '')
      print(f'{path}: could not be decoded as an image ({reason})',
            file=sys.stderr)
      continue
    print(path)
    for label, probability in top:
      print(f'  {label:<12} {probability:7.2%}')
  if failed:
    print(f'{failed} of {len(args.images)} files could not be classified.',
          file=sys.stderr)
  return 1 if failed else 0
