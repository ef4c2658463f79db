"""Reads CIFAR-10 from the sources a user can name with `--data`.

Called by the pipeline (`resolve_source`, `split_patterns`, `find_data_error`;
`remote_source` for Kubeflow) and by `components.ingest.executor`
(`read_splits`, inside Beam workers). Local data is read with numpy, PIL and
the standard library alone; object-store URLs (gs://, s3://) through
TensorFlow's file systems (`components.fileio`). The formats themselves are read by `pickles`
(the official python batches) and `trees` (folders of images); `images` turns
each image into the encoded image an example carries (its own bytes, or PNG)
and says what it rejects or converts.

ids are stable and unique: in an image tree, the file's path inside the tree
(`train/airplane/0001.jpg`); in the pickled batches, `<batch file>/<row, 5
digits>` (`data_batch_1/00042`, `test_batch/00007`), so sorting ids by text
keeps file order. `train_per_class` / `test_per_class` keep the first N ids
per class in that order; `validation` then takes, per class, the fraction * n
ids (rounded half up) that come first when sorted by sha256(salt + NUL + id).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import posixpath
import re
import tarfile
import zlib
from dataclasses import dataclass
from typing import Iterator, Sequence

from components import fileio
from components.ingest import checked, download, limits as limits_lib, pickles, trees
from components.ingest.config import Limits
from components.ingest.errors import DataError, find_data_error
from components.ingest.images import Conversions
from components import cifar10
from components.cifar10 import CLASS_NAMES, OFFICIAL_URL

__all__ = ['DataError', 'find_data_error', 'Source', 'KINDS', 'SPLITS',
           'resolve_source', 'remote_source', 'split_patterns', 'read_splits',
           'read_split']

KINDS = ('pickle_archive', 'pickle_dir', 'image_archive', 'image_dir')
SPLITS = cifar10.SPLITS
_CACHED = ('cifar-10-python.tar.gz', 'cifar-10-batches-py',
           'cifar-10-batches-py-target/cifar-10-batches-py')
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
  kind: str  # one of KINDS
  path: str  # absolute path of the archive, or of the folder holding the data


def _unusable(what: str, cache_dir: str) -> DataError:
  return DataError(
      f'{what}. --data accepts: the official cifar-10-python.tar.gz or its '
      'extracted cifar-10-batches-py/ folder; a folder or .tar.gz/.tgz of images '
      'laid out as train/<class>/*.png|jpg and test/<class>/* (class = '
      f'{", ".join(CLASS_NAMES)}); an http(s) URL of such an archive; a '
      'gs:// or s3:// URL of any of these; or '
      f'nothing, to use the copy in {cache_dir} or download {OFFICIAL_URL}.')


def resolve_source(spec: str, cache_dir: str, limits: Limits = Limits()
                   ) -> Source:
  """Finds (downloading when `spec` is a URL or empty) the data `spec` names."""
  cache = os.path.abspath(os.path.expanduser(cache_dir or '.'))
  spec = (spec or '').strip()
  if not spec:
    for name in _CACHED:
      if os.path.exists(os.path.join(cache, name)):
        if name == download.OFFICIAL_NAME:
          download.check_official(os.path.join(cache, name))
        return _detect(os.path.join(cache, name), cache, limits)
    spec = OFFICIAL_URL
  if re.match(r'(https?|file)://', spec, re.I):
    def detect(path: str) -> Source:
      return _detect(path, cache, limits)
    try:
      return download.fetch(spec, cache, detect, limits.archive_bytes)
    except download.DownloadFailed as e:
      raise _unusable(str(e), cache) from None
  path = fileio.absolute(spec.rstrip('/') if fileio.is_remote(spec) else spec)
  try:
    found = fileio.exists(path)
  except fileio.errors() as e:
    raise _unusable(f'{path} cannot be read ({e})', cache) from None
  if not found:
    raise _unusable(f'{path} does not exist', cache)
  return _detect(path, cache, limits)


def remote_source(spec: str) -> Source:
  """A Source for data that only the pipeline's pods can reach; opens nothing.

  `spec` is an object-store URL (gs://, s3://, hdfs://...) or an absolute path
  as mounted in the pods. The kind is read from the name: `*.tar.gz|.tgz|.tar`
  is the official archive if named cifar-10-python*, else an image archive; a
  folder is the batches if named cifar-10-batches-py, else an image tree.
  Called by `pipeline/kubeflow.py`; local runs use `resolve_source`.
  """
  spec = (spec or '').strip().rstrip('/')
  scheme = re.match(r'([a-z][a-z0-9+.-]*)://', spec, re.I)
  how = ('name it as the pods see it: an object-store URL such as '
         'gs://BUCKET/cifar-10-python.tar.gz, or an absolute path mounted in '
         'every pod (--data, or --set kubeflow.data=...)')
  if not spec:
    raise DataError(f'No data for the cluster: {how}.')
  if scheme and scheme.group(1).lower() in ('http', 'https', 'file'):
    raise DataError(f'{spec}: pods do not download {scheme.group(1)} URLs; '
                    f'copy the archive to an object store and {how}.')
  if not scheme and not spec.startswith('/'):
    raise DataError(f'{spec} is a path on this machine, which the pods cannot '
                    f'see; {how}.')
  if scheme and not spec[len(scheme.group(0)):].strip('/'):
    raise DataError(f'{spec} names no bucket or file; {how}.')
  name = posixpath.basename(spec).lower()
  if name.endswith(('.tar.gz', '.tgz', '.tar')):
    kind = 'pickle_archive' if name.startswith('cifar-10-python') else (
        'image_archive')
  else:
    kind = 'pickle_dir' if name == 'cifar-10-batches-py' else 'image_dir'
  return Source(kind, spec)


def _detect(path: str, cache: str, limits: Limits) -> Source:
  if fileio.isdir(path):
    try:
      subdirs = [os.path.join(path, name) for name in fileio.listdir(path)
                 if not name.startswith('.')
                 and fileio.isdir(os.path.join(path, name))]
    except fileio.errors() as e:
      raise _unusable(f'{path} cannot be read ({e})', cache) from None
    for candidates in ([path], subdirs):
      found = [Source(kind, c) for c in candidates
               for kind, test in (('pickle_dir', pickles.is_pickle_dir),
                                  ('image_dir', trees.is_image_dir)) if test(c)]
      if len(found) > 1:
        raise _unusable(f'{path} holds several data sets ('
                        f'{", ".join(s.path for s in found)}): name one', cache)
      if found:
        if found[0].kind == 'image_dir':
          trees.check_tree('image_dir', found[0].path, limits=limits)
        return found[0]
    raise _unusable(f'{path} is neither CIFAR-10 batches nor an image tree', cache)
  if not fileio.is_remote(path) and not os.path.isfile(path):  # a FIFO would hang
    raise _unusable(f'{path} is not a regular file or folder', cache)
  memo = None if fileio.is_remote(path) else checked.key(path, limits)
  kind = memo and checked.recall(cache, memo, ('pickle_archive', 'image_archive'))
  if kind:
    return Source(kind, path)
  try:
    with fileio.open_tar(path, 'r:*') as tar:
      members = list(limits_lib.members(tar, path, limits))
  except (EOFError, tarfile.TarError, zlib.error) + fileio.errors() as e:
    raise _unusable(f'{path} is not a readable .tar.gz archive ({e})', cache) from None
  layout = trees.archive_layout(members)
  if layout is None:
    raise _unusable(f'{path} holds neither CIFAR-10 batches nor an image tree', cache)
  if layout[0] == 'image_archive':
    trees.check_tree('image_archive', path, members, limits)
  if memo:
    checked.remember(cache, memo, layout[0])
  return Source(layout[0], path)


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


def read_splits(source: Source, splits: Sequence[str], *,
                validation_fraction: float, salt: str, train_per_class: int = 0,
                test_per_class: int = 0, limits: Limits = Limits()
                ) -> Iterator[tuple[str, str, int, bytes]]:
  """Yields (split, id, label, encoded 32x32 RGB image) of the named splits,
  deterministically, in one pass over the source (train and validation share
  its files; each split's own records come in the same order as alone).

  Logs (logger `components.ingest.sources`) how many images of each split
  were converted to RGB, per kind, with an example of each.
  """
  unknown = [s for s in splits if s not in SPLITS]
  if unknown or not splits:
    raise ValueError(f'Unknown splits {list(splits)}; expected some of {SPLITS}.')

  def selector(split: str) -> pickles.Select:
    def select(per_class: dict[int, list[str]]) -> dict[str, int]:
      cap = test_per_class if split == 'test' else train_per_class
      chosen = _select(per_class, split, cap, validation_fraction, salt)
      if not chosen:
        raise DataError(f'The {split} split of {source.path} would hold no '
                        f'images (validation_fraction={validation_fraction}, '
                        f'train_per_class={train_per_class}): change them.')
      return chosen
    return select
  selects = {split: selector(split) for split in dict.fromkeys(splits)}
  if source.kind in ('pickle_dir', 'pickle_archive'):
    return pickles.read_pickles(source.path, source.kind, selects, limits)
  if source.kind in ('image_dir', 'image_archive'):
    conversions = {split: Conversions() for split in selects}
    return _logged(trees.read_tree(source.kind, source.path, selects,
                                   conversions, limits), conversions)
  raise ValueError(f'Unknown source kind {source.kind!r}; expected one of {KINDS}.')


def read_split(source: Source, split: str, **kwargs
               ) -> Iterator[tuple[str, int, bytes]]:
  """Yields (id, label, encoded image) of one split: `read_splits` of it alone."""
  records = read_splits(source, [split], **kwargs)
  return (record[1:] for record in records)


def _logged(records: Iterator[tuple[str, str, int, bytes]],
            conversions: dict[str, Conversions]
            ) -> Iterator[tuple[str, str, int, bytes]]:
  counts = dict.fromkeys(conversions, 0)
  for record in records:
    counts[record[0]] += 1
    yield record
  for split, count in counts.items():
    line = conversions[split].describe(split, count)
    if line:
      _log.warning(line)


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
