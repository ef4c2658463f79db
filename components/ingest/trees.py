"""Reads an image tree `train/<class>/*.png|jpg`, `test/<class>/...` (folder or archive).

Called by `components.ingest.sources`: `archive_layout` and `is_image_dir` to
recognise a tree, `check_tree` when `--data` is resolved (bad folders fail in
seconds, before any pipeline runs), `read_tree` from `read_splits`. ids are the
files' paths inside the tree (`train/airplane/0001.jpg`); class folder names
match the CIFAR-10 classes case-insensitively; hidden files are ignored.
Every file and member is read through `limits` (regular files only, sizes
checked before reading); an archive's links and unsafe names are skipped.
"""

from __future__ import annotations

import os
import tarfile
import zlib
from typing import Callable, Iterator

from components import fileio
from components.ingest import limits as limits_lib
from components.ingest.config import Limits
from components.ingest.errors import DataError
from components.ingest.images import IMAGE_EXTS, Conversions, encoded_image
from components.ingest.pickles import PICKLE_FILES, Select
from components.cifar10 import CLASS_NAMES

_CLASS_INDEX = {name: i for i, name in enumerate(CLASS_NAMES)}
_ARCHIVE_ERRORS = (OSError, EOFError, tarfile.TarError, zlib.error)


def member_name(name: str) -> str:
  while name.startswith('./'):
    name = name[2:]
  return name.rstrip('/')


def is_image_dir(path: str) -> bool:
  return all(fileio.isdir(os.path.join(path, s)) for s in ('train', 'test'))


def archive_layout(members: list[tarfile.TarInfo]) -> tuple[str, str] | None:
  """('pickle_archive' | 'image_archive', folder of the data in the archive)."""
  folders: dict[str, set[str]] = {}
  trees: dict[str, set[str]] = {}
  for m in members:
    parts = member_name(m.name).split('/')
    if m.isfile():
      folders.setdefault('/'.join(parts[:-1]), set()).add(parts[-1])
    for i, part in enumerate(parts[:2]):
      if part in ('train', 'test') and len(parts) > i + 1:
        trees.setdefault('/'.join(parts[:i]), set()).add(part)
  pickles = [f for f, names in folders.items() if set(PICKLE_FILES) <= names]
  images = [p for p, splits in trees.items() if len(splits) == 2]
  if len(pickles) + len(images) != 1:
    return None
  return ('pickle_archive', pickles[0]) if pickles else ('image_archive', images[0])


def _tree(kind: str, path: str, members: list[tarfile.TarInfo] | None = None
          ) -> tuple[list[str], list[str], Callable[[str], str], dict]:
  """(files, folders, where, archive members) of an image tree, by relative path."""
  if kind == 'image_dir':
    where = lambda rel: os.path.join(path, *rel.split('/'))
    files, folders = [], []
    try:
      for split in ('train', 'test'):
        top = where(split).rstrip('/')
        for folder, _, names in fileio.walk(top):
          parts = folder[len(top):].strip('/').split('/')
          if len(parts) == 1 and parts[0]:  # split/<class>/: its files
            folders.append(f'{split}/{parts[0]}')
            files += [f'{split}/{parts[0]}/{n}' for n in names]
    except fileio.errors() as e:
      raise DataError(f'{path} cannot be read ({e}): fix it.') from None
    return files, folders, where, {}
  layout = archive_layout(members or [])
  prefix = f'{layout[1]}/' if layout and layout[1] else ''
  relative = {member_name(m.name)[len(prefix):]: m for m in members or []
              if member_name(m.name).startswith(prefix)}
  return ([r for r, m in relative.items() if m.isfile()],
          [r for r, m in relative.items() if m.isdir()],
          lambda rel: f'{prefix}{rel} in {path}', relative)


def _utf8(name: str) -> bool:
  try:
    name.encode('utf-8')
  except UnicodeEncodeError:  # os and tarfile keep undecodable bytes as surrogates
    return False
  return True


def _index_tree(files: list[str], folders: list[str], split: str,
                where: Callable[[str], str]) -> dict[int, list[str]]:
  """class -> ids of split's images; raises DataError on a bad layout."""
  by_folder: dict[str, list[str]] = {}
  for path in folders + files:
    parts = path.split('/')
    if parts[0] == split and not _utf8(path):  # ids and TFX's globs need it
      shown = path.encode('utf-8', 'surrogateescape').decode('utf-8', 'replace')
      raise DataError(f'{where(shown)} has a name that is not UTF-8 text: '
                      'rename it or remove it.')
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
    odd = [i for i in ids if not i.lower().endswith(IMAGE_EXTS)]
    if odd:
      raise DataError(f'{where(odd[0])} is not a .png/.jpg/.jpeg image: remove '
                      'it or fix it.')
    per_class[label] = ids
  missing = [CLASS_NAMES[i] for i in range(len(CLASS_NAMES)) if i not in per_class]
  if missing:
    raise DataError(f'{where(split)} lacks the class folder(s) '
                    f'{", ".join(missing)}: CIFAR-10 needs all ten classes.')
  return per_class


def check_tree(kind: str, path: str,
               members: list[tarfile.TarInfo] | None = None,
               limits: Limits = Limits()) -> None:
  """Raises DataError if the folders of either split are not a CIFAR-10 tree,
  or (local folders) if one of its images is not a regular file in the tree
  within the size limit."""
  files, folders, where, _ = _tree(kind, path, members)
  for split in ('train', 'test'):
    for ids in _index_tree(files, folders, split, where).values():
      if kind == 'image_dir' and not fileio.is_remote(path):
        for image_id in ids:
          limits_lib.check_file(where(image_id), path, limits.file_bytes)


def read_tree(kind: str, path: str, selects: dict[str, Select],
              conversions: dict[str, Conversions], limits: Limits = Limits()
              ) -> Iterator[tuple[str, str, int, bytes]]:
  """(split, id, label, encoded image) of the splits in `selects`, in one
  pass over the tree; train and validation read train/."""
  def chosen(files, folders, where) -> dict[str, tuple[str, int]]:
    """id -> (split, label); a split's select sees its folder's index."""
    indexes: dict[str, dict[int, list[str]]] = {}
    out = {}
    for split, select in selects.items():
      folder = 'test' if split == 'test' else 'train'
      if folder not in indexes:
        indexes[folder] = _index_tree(files, folders, folder, where)
      out.update((i, (split, label)) for i, label in select(indexes[folder]).items())
    return out

  if kind == 'image_dir':
    files, folders, where, _ = _tree(kind, path)
    wanted = chosen(files, folders, where)
    for image_id in sorted(wanted):
      split, label = wanted[image_id]
      raw = limits_lib.read_file(where(image_id), path, limits.file_bytes)
      yield split, image_id, label, encoded_image(raw, where(image_id),
                                                  conversions[split])
    return
  try:
    with fileio.open_tar(path, 'r:*') as tar:
      files, folders, where, relative = _tree(
          kind, path, list(limits_lib.members(tar, path, limits)))
      wanted = chosen(files, folders, where)
      for rel, member in relative.items():  # in archive order: one sequential read
        if rel in wanted:
          split, label = wanted[rel]
          raw = limits_lib.read_member(tar, member, where(rel), limits.file_bytes)
          yield split, rel, label, encoded_image(raw, where(rel), conversions[split])
  except _ARCHIVE_ERRORS + fileio.errors() as e:
    raise DataError(f'{path} is not a readable .tar.gz archive ({e}): '
                    'download or pack it again.') from None
