"""Bounds on what ingestion reads: regular files only, sizes checked first.

Called by `components.ingest.trees` and `pickles` for every file and archive
member they read, and by `sources` when it recognises an archive. The rules
(README, Data validation):

- from a folder: regular files only, reached without leaving the folder the
  user named (a link inside the tree is fine; one to /dev/zero, a FIFO or a
  device is not). A file is opened non-blocking, so a FIFO never hangs, and
  checked with fstat before one byte is read;
- from an archive: regular members and folders whose names stay inside it
  (no absolute names, no `..`); links and devices are skipped. An archive
  stops being read at the first member larger than the largest limit, after
  `MAX_MEMBERS` entries, or once its entries inflate past `archive_bytes`;
- every read asks for at most the limit plus one byte, so a file that grows
  or lies about its size is caught without reading the rest.
"""

from __future__ import annotations

import os
import stat
import tarfile
from typing import Iterator

from components import fileio
from components.ingest.config import Limits
from components.ingest.errors import DataError

MAX_MEMBERS = 250_000  # archive entries (CIFAR-10: 60,000 images)
HEADER_BYTES = 512  # a tar header, counted against `archive_bytes`
_KINDS = ((stat.S_ISDIR, 'a folder'), (stat.S_ISFIFO, 'a FIFO'),
          (stat.S_ISCHR, 'a character device'), (stat.S_ISBLK, 'a block device'),
          (stat.S_ISSOCK, 'a socket'))


def safe_member(member: tarfile.TarInfo) -> bool:
  """A regular file or a folder whose name stays inside the archive."""
  parts = member.name.replace('\\', '/').split('/')
  return ((member.isfile() or member.isdir()) and not member.name.startswith(
      ('/', '\\')) and '..' not in parts and ':' not in parts[0])


def members(tar: tarfile.TarFile, where: str, limits: Limits
            ) -> Iterator[tarfile.TarInfo]:
  """The archive's safe members in order, reading headers only (a streamed
  archive's data may be read between two of them); DataError on a limit."""
  total, largest = 0, max(limits.file_bytes, limits.batch_bytes)
  for count, member in enumerate(tar, 1):
    if member.isfile() and member.size > largest:
      raise DataError(f'{member.name} in {where} is {member.size} bytes, more '
                      f'than any CIFAR-10 file may be ({largest}, data.max_'
                      'batch_bytes / max_file_bytes): remove it or repack.')
    total += HEADER_BYTES + max(member.size, 0)
    if count > MAX_MEMBERS or total > limits.archive_bytes:
      raise DataError(
          f'{where} holds more than {MAX_MEMBERS} entries or inflates past '
          f'{limits.archive_bytes} bytes (data.max_archive_bytes): it is not '
          'CIFAR-10; check where it came from.')
    if safe_member(member):
      yield member


def read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, where: str,
                limit: int) -> bytes:
  """The bytes of one regular member, at most `limit` of them."""
  _check_size(member.size, where, limit)
  handle = tar.extractfile(member)
  data = handle.read(limit + 1) if handle else b''
  _check_size(len(data), where, limit)
  return data


def read_file(path: str, root: str, limit: int) -> bytes:
  """The bytes of the regular file `path` inside the folder `root`, at most
  `limit` of them; DataError naming the file otherwise."""
  if fileio.is_remote(path):  # object stores hold regular objects only
    try:
      _check_size(fileio.size(path), path, limit)
      with fileio.open_file(path, 'rb') as f:
        data = f.read(limit + 1)
    except fileio.errors() as e:
      raise DataError(f'{path} cannot be read ({e}): fix it.') from None
    _check_size(len(data), path, limit)
    return data
  real = _inside(path, root)
  try:
    handle = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
  except OSError as e:
    raise DataError(f'{path} cannot be read ({e}): fix it.') from None
  with os.fdopen(handle, 'rb') as f:
    _check_stat(os.fstat(handle), path, limit)
    data = f.read(limit + 1)
  _check_size(len(data), path, limit)
  return data


def check_file(path: str, root: str, limit: int) -> None:
  """Raises DataError if `read_file` would refuse `path` (local paths only)."""
  try:
    info = os.stat(_inside(path, root))
  except OSError as e:
    raise DataError(f'{path} cannot be read ({e}): fix it.') from None
  _check_stat(info, path, limit)


def _inside(path: str, root: str) -> str:
  """`path` with its links resolved; DataError if that leaves `root`."""
  real, top = os.path.realpath(path), os.path.realpath(root)
  if os.path.commonpath([real, top]) != top:
    raise DataError(f'{path} is a link to {real}, outside {root}: copy the '
                    'file into the data folder or remove the link.')
  return real


def _check_stat(info: os.stat_result, path: str, limit: int) -> None:
  if not stat.S_ISREG(info.st_mode):
    kind = next((k for test, k in _KINDS if test(info.st_mode)), 'not a file')
    raise DataError(f'{path} is {kind}, not a regular file: remove it from '
                    'the data folder.')
  _check_size(info.st_size, path, limit)


def _check_size(size: int, where: str, limit: int) -> None:
  if size > limit:
    raise DataError(f'{where} is larger than {limit} bytes (data.max_file_'
                    'bytes, or max_batch_bytes for a pickled batch): it is '
                    'not a CIFAR-10 file; remove it, or raise the limit.')
