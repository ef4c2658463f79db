"""File access for local paths and object stores (gs://; s3:// with tensorflow-io).

Called by the components' executors, the trainer loop, the serving push
(`components/push.py`) and the ingest readers. On Kubeflow the artifact URIs,
the data and the serving folder are object-store URLs, which Python's `open`
and `os` cannot read; TensorFlow's gfile can. Local paths go through `os`
(fast, and without TensorFlow: the backend-neutral benchmarks under JAX or
PyTorch, and the ingest readers, which stay TensorFlow-free for local data).
"""

from __future__ import annotations

import builtins
import contextlib
import os
import re
import shutil
import sys
import tarfile
from typing import Iterator

_SCHEME = re.compile(r'([a-z][a-z0-9+.-]*)://', re.I)
_S3_SCHEMES = ('s3',)  # served by tensorflow-io's file systems


def is_remote(path: str) -> bool:
  """True for a URL (gs://, s3://, ram://, ...), False for a local path."""
  return bool(_SCHEME.match(str(path)))


def _gfile(path: str = ''):
  """tf.io.gfile, with tensorflow-io's S3 file system loaded for s3:// paths."""
  try:
    import tensorflow as tf
  except ImportError:
    raise OSError(f'{path}: reading URLs needs TensorFlow installed') from None
  scheme = _SCHEME.match(str(path))
  if scheme and scheme.group(1).lower() in _S3_SCHEMES:
    register_s3()
  return tf.io.gfile


def register_s3() -> None:
  """Loads tensorflow-io, whose import registers the s3:// file system."""
  try:
    import tensorflow_io  # noqa: F401  pylint: disable=unused-import,import-outside-toplevel
  except ImportError:
    raise OSError('s3:// paths need tensorflow-io (pip install '
                  'tensorflow-io==0.37.1) in this environment') from None


def absolute(path: str) -> str:
  """A URL as it is; a local path made absolute."""
  return path if is_remote(path) else os.path.abspath(os.path.expanduser(path))


def open_file(path: str, mode: str = 'r'):
  if not is_remote(path):
    return builtins.open(path, mode)
  return _gfile(path).GFile(path, mode)


def exists(path: str) -> bool:
  return _gfile(path).exists(path) if is_remote(path) else os.path.exists(path)


def isdir(path: str) -> bool:
  return _gfile(path).isdir(path) if is_remote(path) else os.path.isdir(path)


def isfile(path: str) -> bool:
  if not is_remote(path):
    return os.path.isfile(path)
  gfile = _gfile(path)
  return gfile.exists(path) and not gfile.isdir(path)


def size(path: str) -> int:
  """The length in bytes of the file at `path` (following links)."""
  return _gfile(path).stat(path).length if is_remote(path) else os.stat(
      path).st_size


def listdir(path: str) -> list[str]:
  """Entry names (no trailing '/'), sorted; [] when `path` does not exist."""
  if not is_remote(path):
    return sorted(os.listdir(path)) if os.path.isdir(path) else []
  gfile = _gfile(path)
  if not gfile.isdir(path):
    return []
  return sorted(name.rstrip('/') for name in gfile.listdir(path))


def walk(path: str) -> Iterator[tuple[str, list[str], list[str]]]:
  """(folder, subfolder names, file names) top-down, as os.walk."""
  if not is_remote(path):
    yield from os.walk(path, onerror=_raise)
    return
  for folder, subfolders, files in _gfile(path).walk(path):
    yield folder.rstrip('/'), [d.rstrip('/') for d in subfolders], list(files)


def _raise(error: OSError) -> None:
  raise error


def _relative_walk(root: str) -> Iterator[tuple[str, list[str]]]:
  """(folder relative to `root` with '/', '' for root itself; its file names)."""
  root = root.rstrip('/')
  for folder, _, files in walk(root):
    yield folder[len(root):].strip('/'), files


def files_under(root: str) -> list[str]:
  """Paths of every file under `root`, relative to it with '/', sorted."""
  return sorted(f'{rel}/{name}' if rel else name
                for rel, files in _relative_walk(root) for name in files)


def makedirs(path: str) -> None:
  if is_remote(path):
    _gfile(path).makedirs(path)
  else:
    os.makedirs(path, exist_ok=True)


def remove_tree(path: str) -> None:
  """Removes a folder and everything in it; nothing if it does not exist."""
  if not is_remote(path):
    shutil.rmtree(path, ignore_errors=True)
    return
  gfile = _gfile(path)
  if gfile.exists(path):
    gfile.rmtree(path)


def remove(path: str) -> None:
  """Removes one file; nothing if it does not exist."""
  if not is_remote(path):
    if os.path.lexists(path):
      os.remove(path)
    return
  gfile = _gfile(path)
  if gfile.exists(path):
    gfile.remove(path)


def copy_file(source: str, target: str) -> None:
  """Copies one file between any two stores (overwriting `target`)."""
  if not (is_remote(source) or is_remote(target)):
    shutil.copyfile(source, target)
    return
  _gfile(target if is_remote(target) else source).copy(
      source, target, overwrite=True)


def copy_tree(source: str, target: str, *, last: tuple[str, ...] = ()) -> None:
  """Copies the folders and files under `source` to `target`, file by file;
  either may be a local path or a URL.

  Files whose relative path is in `last` are copied after all others, so a
  reader that waits for them (TF Serving waits for `saved_model.pb`) never
  finds the others missing.
  """
  files = []
  for rel, names in _relative_walk(source):
    makedirs(os.path.join(target, rel) if rel else target)  # empty ones too
    files += [f'{rel}/{name}' if rel else name for name in names]
  for rel in sorted(files, key=lambda r: r in last):  # stable: `last` at the end
    copy_file(os.path.join(source, rel), os.path.join(target, rel))


def join(*parts: str) -> str:
  return os.path.join(*parts)


@contextlib.contextmanager
def open_tar(path: str, mode: str = 'r:*') -> Iterator[tarfile.TarFile]:
  """`tarfile.open(path, mode)` for a local path or a URL."""
  if not is_remote(path):
    with tarfile.open(path, mode) as tar:
      yield tar
    return
  with open_file(path, 'rb') as raw, tarfile.open(fileobj=raw, mode=mode) as tar:
    yield tar


def errors() -> tuple[type, ...]:
  """What a failed read raises: OSError, and TensorFlow's OpError once loaded.

  Use as `except fileio.errors() as e:` around reads of local or URL paths.
  """
  loaded = sys.modules.get('tensorflow.python.framework.errors_impl')
  return (OSError,) + ((loaded.OpError,) if loaded else ())
