"""Reads the official python pickle format (cifar-10-batches-py/, or its .tar.gz).

Called by `components.ingest.sources` (`is_pickle_dir`, `read_pickles` from
`read_split`). A batch is unpickled with an allow-list of the classes a
CIFAR-10 batch holds, so a crafted file cannot run code; anything that is not
a CIFAR-10 batch, or a label outside 0-9, is a DataError naming the file (and
the record).
"""

from __future__ import annotations

import os
import pickle
import posixpath
import tarfile
import zlib
from typing import BinaryIO, Callable, Iterator

import numpy as np
from PIL import Image

from components import fileio
from components.ingest.errors import DataError
from components.ingest.images import to_png
from components.cifar10 import CLASS_NAMES, OFFICIAL_URL

TRAIN_BATCHES = tuple(f'data_batch_{i}' for i in range(1, 6))
PICKLE_FILES = TRAIN_BATCHES + ('test_batch', 'batches.meta')
_FIX = f'replace it with the file from {OFFICIAL_URL}'


def is_pickle_dir(path: str) -> bool:
  return all(fileio.isfile(os.path.join(path, n)) for n in PICKLE_FILES)


class _BatchUnpickler(pickle.Unpickler):
  """Unpickles only what a CIFAR-10 batch holds (no arbitrary code)."""
  _ALLOWED = {'_reconstruct', 'ndarray', 'dtype', 'scalar', '_frombuffer'}

  def find_class(self, module: str, name: str):
    if (module.split('.')[0] == 'numpy' and name in self._ALLOWED) or (
        module, name) in (('_codecs', 'encode'), ('__builtin__', 'bytes'),
                          ('builtins', 'bytes')):
      return super().find_class(module, name)
    raise pickle.UnpicklingError(f'{module}.{name} is not allowed')


def _unpickle(f: BinaryIO, where: str, keys: tuple[bytes, ...]) -> dict:
  try:
    batch = _BatchUnpickler(f, encoding='bytes').load()
  except Exception as e:  # pylint: disable=broad-except
    raise DataError(f'{where} is not a CIFAR-10 batch (it does not unpickle: '
                    f'{e}); {_FIX}.') from None
  if not isinstance(batch, dict) or not all(k in batch for k in keys):
    raise DataError(f'{where} is not a CIFAR-10 batch (it lacks the '
                    f'{"/".join(map(repr, keys))} entries); {_FIX}.')
  return batch


def _load_batch(f: BinaryIO, where: str) -> tuple[np.ndarray, np.ndarray]:
  batch = _unpickle(f, where, (b'data', b'labels'))
  data, labels = np.asarray(batch[b'data']), np.asarray(batch[b'labels'])
  if labels.size == 0:  # [] reads as float64
    labels = labels.astype(np.int64)
  if (data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32
      or labels.shape != data.shape[:1]
      or not np.issubdtype(labels.dtype, np.integer)):
    raise DataError(
        f'{where} is not a CIFAR-10 batch (data {data.dtype} {data.shape}, '
        f'labels {labels.dtype} {labels.shape}; expected N x 3072 uint8 and N '
        f'integer labels); {_FIX}.')
  bad = np.flatnonzero((labels < 0) | (labels >= len(CLASS_NAMES)))
  if bad.size:
    raise DataError(f'{where}: record {bad[0]} has label {labels[bad[0]]}, '
                    'outside 0-9: fix or replace the file.')
  return data, labels.astype(np.int64)


def _check_meta(f: BinaryIO, where: str) -> None:
  names = [n.decode() if isinstance(n, bytes) else str(n) for n in
           _unpickle(f, where, (b'label_names',))[b'label_names']]
  if tuple(names) != CLASS_NAMES:
    raise DataError(f'{where} names the classes {names}, not those of CIFAR-10 '
                    f'({", ".join(CLASS_NAMES)}): use the CIFAR-10 data set.')


def _batches(path: str, kind: str, split: str
             ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """batch name -> (data, labels) of the batches `split` reads, all checked."""
  wanted = ('test_batch',) if split == 'test' else TRAIN_BATCHES
  batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}

  def take(name: str, f: BinaryIO, where: str) -> None:
    if name == 'batches.meta':
      _check_meta(f, where)
    elif name in wanted and name not in batches:
      batches[name] = _load_batch(f, where)
  if kind == 'pickle_dir':
    for name in wanted + ('batches.meta',):
      where = os.path.join(path, name)
      try:
        with fileio.open_file(where, 'rb') as f:
          take(name, f, where)
      except fileio.errors() as e:
        raise DataError(f'{where} cannot be read ({e}): restore it.') from None
  else:
    try:
      with fileio.open_tar(path, 'r|*') as tar:
        for member in tar:
          name = posixpath.basename(member.name.rstrip('/'))
          if member.isfile() and name in wanted + ('batches.meta',):
            take(name, tar.extractfile(member), f'{member.name} in {path}')
    except (EOFError, tarfile.TarError, zlib.error) + fileio.errors() as e:
      raise DataError(f'{path} is not a readable .tar.gz archive ({e}): '
                      'download it again.') from None
  missing = [n for n in wanted if n not in batches]
  if missing:
    raise DataError(f'{path} lacks {", ".join(missing)}: use a complete '
                    'copy of cifar-10-python.tar.gz.')
  return batches


def read_pickles(path: str, kind: str, split: str,
                 select: Callable[[dict[int, list[str]]], dict[str, int]],
                 ) -> Iterator[tuple[str, int, bytes]]:
  """(id, label, PNG) of one split; ids are '<batch>/<row, 5 digits>'."""
  batches = _batches(path, kind, split)
  per_class: dict[int, list[str]] = {}
  for name, (_, labels) in batches.items():
    for row, label in enumerate(labels.tolist()):
      per_class.setdefault(label, []).append(f'{name}/{row:05d}')
  if not per_class:
    raise DataError(f'{path}: {", ".join(sorted(batches))} hold(s) no images, so '
                    f'the {split} split would be empty; {_FIX}.')
  chosen = select(per_class)
  for image_id in sorted(chosen):
    name, row = image_id.split('/')
    pixels = batches[name][0][int(row)].reshape(3, 32, 32).transpose(1, 2, 0)
    image = Image.fromarray(np.ascontiguousarray(pixels), 'RGB')
    yield image_id, chosen[image_id], to_png(image, image_id)
