"""Reads CIFAR-10 from the sources a user can name with `--data`.

Called by the pipeline (`resolve_source`, `split_patterns`, `find_data_error`)
and by `components.ingest.executor` (`read_split`, inside Beam workers). Pure
Python: numpy, PIL and the standard library, never TensorFlow.

ids are stable and unique: in an image tree, the file's path inside the tree
(`train/airplane/0001.jpg`); in the pickled batches, `<batch file>/<row, 5
digits>` (`data_batch_1/00042`, `test_batch/00007`), so sorting ids by text
keeps file order. `train_per_class` / `test_per_class` keep the first N ids
per class in that order; `validation` then takes, per class, the fraction * n
ids (rounded half up) that come first when sorted by sha256(salt + NUL + id).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import pickle
import posixpath
import re
import shutil
import tarfile
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from pipeline.config import CLASS_NAMES, IMAGE_SIZE, OFFICIAL_URL

KINDS = ('pickle_archive', 'pickle_dir', 'image_archive', 'image_dir')
SPLITS = ('train', 'validation', 'test')
_TRAIN_BATCHES = tuple(f'data_batch_{i}' for i in range(1, 6))
_PICKLE_FILES = _TRAIN_BATCHES + ('test_batch', 'batches.meta')
_CACHED = ('cifar-10-python.tar.gz', 'cifar-10-batches-py',
           'cifar-10-batches-py-target/cifar-10-batches-py')
_IMAGE_EXTS = ('.png', '.jpg', '.jpeg')
_CLASS_INDEX = {name: i for i, name in enumerate(CLASS_NAMES)}
_OPEN, _CLOSE = '<<DataError: ', ' :DataError>>'
_MARKED = re.compile(re.escape(_OPEN) + '(.*?)' + re.escape(_CLOSE), re.S)


class DataError(ValueError):
  """A data problem the user can fix; `.message` says what and where.

  str(e) frames the message between markers so that `find_data_error` can
  recover it from any exception text Beam wraps it in.
  """

  def __init__(self, message: str):
    found = _MARKED.search(message)  # Beam re-creates it with a step suffix
    self.message = found.group(1) if found else message
    super().__init__(f'{_OPEN}{self.message}{_CLOSE}')


def find_data_error(exc: BaseException) -> str | None:
  """The DataError message inside `exc` (its causes, contexts or text), or None."""
  todo, seen = [exc], set()
  while todo:
    current = todo.pop(0)
    if current is None or id(current) in seen:
      continue
    seen.add(id(current))
    if isinstance(current, DataError):
      return current.message
    try:
      found = _MARKED.search(str(current))
    except Exception:  # pylint: disable=broad-except
      found = None
    if found:
      return found.group(1)
    todo += [current.__cause__, current.__context__]
  return None


@dataclass(frozen=True)
class Source:
  kind: str  # one of KINDS
  path: str  # absolute path of the archive, or of the folder holding the data


def _unusable(what: str, cache_dir: str) -> DataError:
  return DataError(
      f'{what}. --data accepts: the official cifar-10-python.tar.gz or its '
      'extracted cifar-10-batches-py/ folder; a folder or .tar.gz/.tgz of images '
      'laid out as train/<class>/*.png|jpg and test/<class>/* (class = '
      f'{", ".join(CLASS_NAMES)}); an http(s) URL of such an archive; or '
      f'nothing, to use the copy in {cache_dir} or download {OFFICIAL_URL}.')


def resolve_source(spec: str, cache_dir: str) -> Source:
  """Finds (downloading when `spec` is a URL or empty) the data `spec` names."""
  cache = os.path.abspath(os.path.expanduser(cache_dir or '.'))
  spec = (spec or '').strip()
  if not spec:
    for name in _CACHED:
      if os.path.exists(os.path.join(cache, name)):
        return _detect(os.path.join(cache, name), cache)
    spec = OFFICIAL_URL
  if re.match(r'(https?|file)://', spec, re.I):
    return _detect(_download(spec, cache), cache)
  path = os.path.abspath(os.path.expanduser(spec))
  if not os.path.exists(path):
    raise _unusable(f'{path} does not exist', cache)
  return _detect(path, cache)


def _download(url: str, cache: str) -> str:
  name = posixpath.basename(urllib.parse.unquote(urllib.parse.urlparse(url).path))
  target = os.path.join(cache, name or 'download')
  if os.path.exists(target):
    return target
  tmp = ''
  try:
    os.makedirs(cache, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=cache, prefix=f'.{name}.', suffix='.part')
    with os.fdopen(handle, 'wb') as out, urllib.request.urlopen(
        url, timeout=60) as response:
      shutil.copyfileobj(response, out, 1 << 20)
    os.replace(tmp, target)
  except (OSError, ValueError) as e:  # URLError and HTTPError are OSErrors
    if tmp and os.path.exists(tmp):
      os.remove(tmp)
    raise _unusable(f'Could not download {url} into {cache} ({e})', cache) from None
  return target


def _detect(path: str, cache: str) -> Source:
  if os.path.isdir(path):
    try:
      subdirs = sorted(e.path for e in os.scandir(path)
                       if e.is_dir() and not e.name.startswith('.'))
    except OSError as e:
      raise _unusable(f'{path} cannot be read ({e})', cache) from None
    for candidates in ([path], subdirs):
      found = [Source(kind, c) for c in candidates
               for kind, test in (('pickle_dir', _is_pickle_dir),
                                  ('image_dir', _is_image_dir)) if test(c)]
      if len(found) > 1:
        raise _unusable(f'{path} holds several data sets ('
                        f'{", ".join(s.path for s in found)}): name one', cache)
      if found:
        return _checked(found[0])
    raise _unusable(f'{path} is neither CIFAR-10 batches nor an image tree', cache)
  try:
    with tarfile.open(path, 'r:*') as tar:
      members = tar.getmembers()
  except (OSError, EOFError, tarfile.TarError) as e:
    raise _unusable(f'{path} is not a readable .tar.gz archive ({e})', cache) from None
  layout = _archive_layout(members)
  if layout is None:
    raise _unusable(f'{path} holds neither CIFAR-10 batches nor an image tree', cache)
  return _checked(Source(layout[0], path), members)


def _checked(source: Source, members: list[tarfile.TarInfo] | None = None
             ) -> Source:
  """Checks an image tree's folders now, before any pipeline runs."""
  if source.kind in ('image_dir', 'image_archive'):
    files, folders, where, _ = _tree(source, members)
    for split in ('train', 'test'):
      _index_tree(files, folders, split, where)
  return source


def _is_pickle_dir(path: str) -> bool:
  return all(os.path.isfile(os.path.join(path, n)) for n in _PICKLE_FILES)


def _is_image_dir(path: str) -> bool:
  return all(os.path.isdir(os.path.join(path, s)) for s in ('train', 'test'))


def _member_name(name: str) -> str:
  while name.startswith('./'):
    name = name[2:]
  return name.rstrip('/')


def _archive_layout(members: list[tarfile.TarInfo]) -> tuple[str, str] | None:
  """('pickle_archive' | 'image_archive', folder of the data in the archive)."""
  folders: dict[str, set[str]] = {}
  trees: dict[str, set[str]] = {}
  for m in members:
    parts = _member_name(m.name).split('/')
    if m.isfile():
      folders.setdefault('/'.join(parts[:-1]), set()).add(parts[-1])
    for i, part in enumerate(parts[:2]):
      if part in ('train', 'test') and len(parts) > i + 1:
        trees.setdefault('/'.join(parts[:i]), set()).add(part)
  pickles = [f for f, names in folders.items() if set(_PICKLE_FILES) <= names]
  images = [p for p, splits in trees.items() if len(splits) == 2]
  if len(pickles) + len(images) != 1:
    return None
  return ('pickle_archive', pickles[0]) if pickles else ('image_archive', images[0])


def split_patterns(source: Source) -> tuple[str, dict[str, str]]:
  """(input_base, split -> glob under it) that TFX fingerprints per split."""
  if source.kind in ('pickle_archive', 'image_archive'):
    name = os.path.basename(source.path)
    return os.path.dirname(source.path), {s: name for s in SPLITS}
  if source.kind == 'image_dir':
    return source.path, {'train': 'train/*/*', 'validation': 'train/*/*',
                         'test': 'test/*/*'}
  if source.kind == 'pickle_dir':
    return source.path, {'train': 'data_batch_*', 'validation': 'data_batch_*',
                         'test': 'test_batch'}
  raise ValueError(f'Unknown source kind {source.kind!r}; expected one of {KINDS}.')


def read_split(source: Source, split: str, *, validation_fraction: float,
               salt: str, train_per_class: int = 0, test_per_class: int = 0
               ) -> Iterator[tuple[str, int, bytes]]:
  """Yields (id, label, 32x32 RGB PNG bytes) of one split, deterministically."""
  if split not in SPLITS:
    raise ValueError(f'Unknown split {split!r}; expected one of {SPLITS}.')
  def select(per_class: dict[int, list[str]]) -> dict[str, int]:
    cap = test_per_class if split == 'test' else train_per_class
    chosen = _select(per_class, split, cap, validation_fraction, salt)
    if not chosen:
      raise DataError(f'The {split} split of {source.path} would hold no images '
                      f'(validation_fraction={validation_fraction}, '
                      f'train_per_class={train_per_class}): change them.')
    return chosen
  if source.kind in ('pickle_dir', 'pickle_archive'):
    return _read_pickles(source, split, select)
  if source.kind in ('image_dir', 'image_archive'):
    return _read_tree(source, split, select)
  raise ValueError(f'Unknown source kind {source.kind!r}; expected one of {KINDS}.')


def _select(per_class: dict[int, list[str]], split: str, cap: int,
            fraction: float, salt: str) -> dict[str, int]:
  chosen: dict[str, int] = {}
  for label, ids in per_class.items():
    ids = sorted(ids)[:cap] if cap > 0 else sorted(ids)
    if split != 'test':
      ids.sort(key=lambda i: hashlib.sha256(f'{salt}\0{i}'.encode()).digest())
      n_val = math.floor(fraction * len(ids) + 0.5)  # rounded half up
      ids = ids[:n_val] if split == 'validation' else ids[n_val:]
    chosen.update((i, label) for i in ids)
  return chosen


def _to_png(image: Image.Image | bytes, where: str) -> bytes:
  try:
    if isinstance(image, bytes):
      with Image.open(io.BytesIO(image)) as opened:
        if opened.size != (IMAGE_SIZE, IMAGE_SIZE):
          w, h = opened.size
          raise DataError(f'{where} is {w}x{h} pixels, not {IMAGE_SIZE}x'
                          f'{IMAGE_SIZE}: remove it or resize it.')
        opened.load()
        image = opened if opened.mode == 'RGB' else opened.convert('RGB')
    out = io.BytesIO()
    image.save(out, format='PNG')
    return out.getvalue()
  except DataError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    why = 'unknown format' if isinstance(e, UnidentifiedImageError) else e
    raise DataError(f'{where} does not decode as an image ({why}): remove it '
                    'or fix it.') from None


class _BatchUnpickler(pickle.Unpickler):
  """Unpickles only what a CIFAR-10 batch holds (no arbitrary code)."""
  _ALLOWED = {'_reconstruct', 'ndarray', 'dtype', 'scalar', '_frombuffer'}

  def find_class(self, module: str, name: str):
    if (module.split('.')[0] == 'numpy' and name in self._ALLOWED) or (
        module, name) == ('_codecs', 'encode'):
      return super().find_class(module, name)
    raise pickle.UnpicklingError(f'{module}.{name} is not allowed')


def _unpickle(f: BinaryIO, where: str, keys: tuple[bytes, ...]) -> dict:
  fix = f'replace it with the file from {OFFICIAL_URL}'
  try:
    batch = _BatchUnpickler(f, encoding='bytes').load()
  except Exception as e:  # pylint: disable=broad-except
    raise DataError(f'{where} is not a CIFAR-10 batch (it does not unpickle: '
                    f'{e}); {fix}.') from None
  if not isinstance(batch, dict) or not all(k in batch for k in keys):
    raise DataError(f'{where} is not a CIFAR-10 batch (it lacks the '
                    f'{"/".join(map(repr, keys))} entries); {fix}.')
  return batch


def _load_batch(f: BinaryIO, where: str) -> tuple[np.ndarray, np.ndarray]:
  batch = _unpickle(f, where, (b'data', b'labels'))
  data, labels = np.asarray(batch[b'data']), np.asarray(batch[b'labels'])
  if (data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32
      or labels.shape != data.shape[:1]
      or not np.issubdtype(labels.dtype, np.integer)):
    raise DataError(
        f'{where} is not a CIFAR-10 batch (data {data.dtype} {data.shape}, '
        f'labels {labels.dtype} {labels.shape}; expected N x 3072 uint8 and N '
        f'integer labels); replace it with the file from {OFFICIAL_URL}.')
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


def _read_pickles(source: Source, split: str,
                  select: Callable[[dict[int, list[str]]], dict[str, int]]
                  ) -> Iterator[tuple[str, int, bytes]]:
  wanted = ('test_batch',) if split == 'test' else _TRAIN_BATCHES
  batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
  def take(name: str, f: BinaryIO, where: str) -> None:
    if name == 'batches.meta':
      _check_meta(f, where)
    elif name in wanted and name not in batches:
      batches[name] = _load_batch(f, where)
  if source.kind == 'pickle_dir':
    for name in wanted + ('batches.meta',):
      where = os.path.join(source.path, name)
      try:
        with open(where, 'rb') as f:
          take(name, f, where)
      except OSError as e:
        raise DataError(f'{where} cannot be read ({e}): restore it.') from None
  else:
    with tarfile.open(source.path, 'r|*') as tar:
      for member in tar:
        name = posixpath.basename(_member_name(member.name))
        if member.isfile() and name in wanted + ('batches.meta',):
          take(name, tar.extractfile(member), f'{member.name} in {source.path}')
  missing = [n for n in wanted if n not in batches]
  if missing:
    raise DataError(f'{source.path} lacks {", ".join(missing)}: use a complete '
                    'copy of cifar-10-python.tar.gz.')
  per_class: dict[int, list[str]] = {}
  for name, (_, labels) in batches.items():
    for row, label in enumerate(labels.tolist()):
      per_class.setdefault(label, []).append(f'{name}/{row:05d}')
  chosen = select(per_class)
  for image_id in sorted(chosen):
    name, row = image_id.split('/')
    pixels = batches[name][0][int(row)].reshape(3, 32, 32).transpose(1, 2, 0)
    image = Image.fromarray(np.ascontiguousarray(pixels), 'RGB')
    yield image_id, chosen[image_id], _to_png(image, image_id)


def _tree(source: Source, members: list[tarfile.TarInfo] | None = None
          ) -> tuple[list[str], list[str], Callable[[str], str], dict]:
  """(files, folders, where, archive members) of an image tree, by relative path."""
  if source.kind == 'image_dir':
    where = lambda rel: os.path.join(source.path, *rel.split('/'))
    files, folders = [], []
    try:
      for split in ('train', 'test'):
        for entry in os.scandir(where(split)):
          if entry.is_dir():
            folders.append(f'{split}/{entry.name}')
            files += [f'{split}/{entry.name}/{e.name}'
                      for e in os.scandir(entry.path) if e.is_file()]
    except OSError as e:
      raise DataError(f'{source.path} cannot be read ({e}): fix it.') from None
    return files, folders, where, {}
  layout = _archive_layout(members)
  prefix = f'{layout[1]}/' if layout and layout[1] else ''
  relative = {_member_name(m.name)[len(prefix):]: m for m in members
              if _member_name(m.name).startswith(prefix)}
  return ([r for r, m in relative.items() if m.isfile()],
          [r for r, m in relative.items() if m.isdir()],
          lambda rel: f'{prefix}{rel} in {source.path}', relative)


def _index_tree(files: list[str], folders: list[str], split: str,
                where: Callable[[str], str]) -> dict[int, list[str]]:
  """class -> ids of split's images; raises DataError on a bad layout."""
  by_folder: dict[str, list[str]] = {}
  for path in folders + files:
    parts = path.split('/')
    if parts[0] == split and len(parts) in (2, 3) and not parts[1].startswith('.'):
      ids = by_folder.setdefault(parts[1], [])
      if len(parts) == 3 and not parts[2].startswith('.'):
        ids.append(path)
  if not by_folder:
    raise DataError(f'{where(split)} holds no class folders: put its images in '
                    f'{split}/<class>/ with class one of {", ".join(CLASS_NAMES)}.')
  per_class: dict[int, list[str]] = {}
  for folder, ids in sorted(by_folder.items()):
    label = _CLASS_INDEX.get(folder.lower())
    if label is None or label in per_class:
      raise DataError(f'Folder {where(split + "/" + folder)} is not a CIFAR-10 '
                      f'class (or repeats one): rename it to one of '
                      f'{", ".join(CLASS_NAMES)} or remove it.')
    if not ids:
      raise DataError(f'Class folder {where(split + "/" + folder)} is empty: '
                      'add its images or remove the class from the data.')
    odd = [i for i in ids if not i.lower().endswith(_IMAGE_EXTS)]
    if odd:
      raise DataError(f'{where(odd[0])} is not a .png/.jpg/.jpeg image: remove '
                      'it or fix it.')
    per_class[label] = ids
  missing = [CLASS_NAMES[i] for i in range(len(CLASS_NAMES)) if i not in per_class]
  if missing:
    raise DataError(f'{where(split)} lacks the class folder(s) '
                    f'{", ".join(missing)}: CIFAR-10 needs all ten classes.')
  return per_class


def _read_tree(source: Source, split: str,
               select: Callable[[dict[int, list[str]]], dict[str, int]]
               ) -> Iterator[tuple[str, int, bytes]]:
  folder = 'test' if split == 'test' else 'train'
  if source.kind == 'image_dir':
    files, folders, where, _ = _tree(source)
    chosen = select(_index_tree(files, folders, folder, where))
    for image_id in sorted(chosen):
      try:
        with open(where(image_id), 'rb') as f:
          raw = f.read()
      except OSError as e:
        raise DataError(f'{where(image_id)} cannot be read ({e}): fix it.') from None
      yield image_id, chosen[image_id], _to_png(raw, where(image_id))
    return
  with tarfile.open(source.path, 'r:*') as tar:
    files, folders, where, relative = _tree(source, tar.getmembers())
    chosen = select(_index_tree(files, folders, folder, where))
    for rel, member in relative.items():  # in archive order: one sequential read
      if rel in chosen:
        raw = tar.extractfile(member).read()
        yield rel, chosen[rel], _to_png(raw, where(rel))
