"""Reads the official python pickle format (cifar-10-batches-py/, or its .tar.gz).

Called by `components.ingest.sources` (`is_pickle_dir`, `read_pickles` from
`read_split`). A batch is read whole only once its size passes
`Limits.batch_bytes` (through `limits`), then unpickled with an allow-list
of exact (module, name) pairs: the few numpy functions a CIFAR-10 batch
names (numpy 1.26, as in uv.lock, and numpy 2's spelling of the same), each
resolved from numpy as already imported and guarded against the arguments
that would allocate without bound, so a crafted file can neither run code,
import a module nor exhaust memory; anything that is not a CIFAR-10 batch, or
a label outside 0-9, is a DataError naming the file (and the record).
"""

from __future__ import annotations

import codecs
import io
import os
import pickle
import posixpath
import tarfile
import zlib
from typing import BinaryIO, Callable, Iterator

import numpy as np
from PIL import Image

from components import fileio
from components.ingest import limits as limits_lib
from components.ingest.config import Limits
from components.ingest.errors import DataError
from components.ingest.images import encoded_image
from components.cifar10 import CLASS_NAMES, OFFICIAL_URL

TRAIN_BATCHES = tuple(f'data_batch_{i}' for i in range(1, 6))
PICKLE_FILES = TRAIN_BATCHES + ('test_batch', 'batches.meta')
_FIX = f'replace it with the file from {OFFICIAL_URL}'
# How a reader picks one split's records: class -> ids in, id -> label out.
Select = Callable[[dict[int, list[str]]], dict[str, int]]


def is_pickle_dir(path: str) -> bool:
  return all(fileio.isfile(os.path.join(path, n)) for n in PICKLE_FILES)


_NDARRAY = object()  # stands for numpy.ndarray, which is not callable here


def _reconstruct(cls, shape, dtype):
  """numpy's array stub before __setstate__ fills it: always empty."""
  if cls is not _NDARRAY or tuple(shape) != (0,):
    raise pickle.UnpicklingError('numpy _reconstruct with other arguments '
                                 'than a pickled array\'s is not allowed')
  return np.core.multiarray._reconstruct(np.ndarray, (0,), dtype)


def _encode(text, encoding='utf-8'):
  if not isinstance(text, str) or encoding != 'latin1':
    raise pickle.UnpicklingError('_codecs.encode is allowed on latin1 text only')
  return codecs.encode(text, encoding)


def _bytes(*args):
  if args:  # bytes(10**12) would allocate a terabyte
    raise pickle.UnpicklingError('bytes() is allowed without arguments only')
  return b''


_SAFE = {'_reconstruct': _reconstruct, 'ndarray': _NDARRAY, 'dtype': np.dtype,
         'scalar': np.core.multiarray.scalar,
         '_frombuffer': np.core.numeric._frombuffer}
_ALLOWED = {(f'numpy{core}.{module}', name): _SAFE[name]
            for core in ('.core', '._core')
            for module, name in (('multiarray', '_reconstruct'),
                                 ('multiarray', 'scalar'),
                                 ('numeric', '_frombuffer'))}
_ALLOWED.update({('numpy', 'ndarray'): _NDARRAY, ('numpy', 'dtype'): np.dtype,
                 ('_codecs', 'encode'): _encode, ('__builtin__', 'bytes'): _bytes,
                 ('builtins', 'bytes'): _bytes})


class _BatchUnpickler(pickle.Unpickler):
  """Unpickles only what a CIFAR-10 batch holds: exact (module, name) pairs,
  never importing anything (no arbitrary code, no unbounded allocation)."""

  def find_class(self, module: str, name: str):
    found = _ALLOWED.get((module, name))
    if found is None:
      raise pickle.UnpicklingError(f'{module}.{name} is not allowed')
    return found


def _unpickle(f: BinaryIO, where: str, keys: tuple[bytes, ...]) -> dict:
  try:
    batch = _BatchUnpickler(f, encoding='bytes').load()
  except MemoryError:
    raise DataError(f'{where} asks for more memory than a CIFAR-10 batch '
                    f'needs; {_FIX}.') from None
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


def _batch_names(split: str) -> tuple[str, ...]:
  return ('test_batch',) if split == 'test' else TRAIN_BATCHES


def _batches(path: str, kind: str, wanted: tuple[str, ...], limits: Limits
             ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """batch name -> (data, labels) of the `wanted` batches, all checked."""
  batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}

  def take(name: str, f: BinaryIO, where: str) -> None:
    if name == 'batches.meta':
      _check_meta(f, where)
    elif name in wanted and name not in batches:
      batches[name] = _load_batch(f, where)
  if kind == 'pickle_dir':
    for name in wanted + ('batches.meta',):
      where = os.path.join(path, name)
      take(name, io.BytesIO(limits_lib.read_file(where, path, limits.batch_bytes)),
           where)
  else:
    try:
      with fileio.open_tar(path, 'r|*') as tar:
        for member in limits_lib.members(tar, path, limits):
          name = posixpath.basename(member.name.rstrip('/'))
          where = f'{member.name} in {path}'
          if member.isfile() and name in wanted + ('batches.meta',):
            take(name, io.BytesIO(limits_lib.read_member(
                tar, member, where, limits.batch_bytes)), where)
    except (EOFError, tarfile.TarError, zlib.error) + fileio.errors() as e:
      raise DataError(f'{path} is not a readable .tar.gz archive ({e}): '
                      'download it again.') from None
  missing = [n for n in wanted if n not in batches]
  if missing:
    raise DataError(f'{path} lacks {", ".join(missing)}: use a complete '
                    'copy of cifar-10-python.tar.gz.')
  return batches


def read_pickles(path: str, kind: str,
                 selects: dict[str, Select],
                 limits: Limits = Limits()) -> Iterator[tuple[str, str, int, bytes]]:
  """(split, id, label, PNG) of the splits in `selects`, each batch read
  once; ids are '<batch>/<row, 5 digits>'."""
  wanted = tuple(dict.fromkeys(n for s in selects for n in _batch_names(s)))
  batches = _batches(path, kind, wanted, limits)
  for split, select in selects.items():
    names = _batch_names(split)
    per_class: dict[int, list[str]] = {}
    for name in names:
      for row, label in enumerate(batches[name][1].tolist()):
        per_class.setdefault(label, []).append(f'{name}/{row:05d}')
    if not per_class:
      raise DataError(f'{path}: {", ".join(names)} hold(s) no images, so '
                      f'the {split} split would be empty; {_FIX}.')
    chosen = select(per_class)
    for image_id in sorted(chosen):
      name, row = image_id.split('/')
      pixels = batches[name][0][int(row)].reshape(3, 32, 32).transpose(1, 2, 0)
      image = Image.fromarray(np.ascontiguousarray(pixels), 'RGB')
      yield split, image_id, chosen[image_id], encoded_image(image, image_id)
