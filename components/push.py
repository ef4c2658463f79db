"""The serving directory: versions, the push lock, and the push itself.

Called by `components/selector.py` (the ModelSelector's executor) and
`cifar10-tfx predict`. Layout is TF Serving's: `<serving_dir>/<model_name>/
<version>/`, a version being a folder named in ASCII digits (within int64);
other entries (a file `1`, a folder `²`) never block a push, and the next
version is above every all-digit name. `model_name` matches `MODEL_NAME`, so
it stays inside `serving_dir`. The rest of `<model_name>/` is ours:
`.push.lock` (one push at a time, across pipeline roots), `.last_version`
(the highest version ever pushed, so that versions only increase even if
someone deletes the newest) and `.staging-*` (a copy being pushed; one left
by a killed push is removed by the next). A failure the user can fix (a
read-only or full folder) is a `PushError`.

Two stores, one contract (a failure or a crash at any point leaves the served
versions as they were; a server never loads a partial version):

- a local or mounted folder: flock, a staged copy flushed to disk, and an
  atomic rename into place;
- an object store (gs://, s3://; Kubeflow's pipeline root): no flock and no
  atomic rename exist there. The lock is a lease object (`.push.lock`, taken
  when absent or older than `LEASE_SECONDS`, then read back); the staged copy
  is checked, then copied into `<version>/` with `saved_model.pb` last and
  removed on any failure. TF Serving reads a version only once
  `saved_model.pb` exists, and retries a load that fails.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import stat
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Iterator

from components import fileio
from components.errors import UserError

LOCK_FILE, LAST_VERSION_FILE, STAGING_PREFIX = '.push.lock', '.last_version', '.staging-'
SAVED_MODEL_FILES = ('saved_model.pb', 'saved_model.pbtxt')  # written last
LEASE_SECONDS = 1800.0  # an object-store lock older than this is abandoned
_POLL_SECONDS = 2.0
MODEL_NAME = re.compile(r'[A-Za-z0-9_][A-Za-z0-9_.-]*')  # and not '.' or '..'
_INT64_MAX = 2 ** 63 - 1  # TF Serving reads version names as int64


class PushError(UserError, OSError):
  """The serving folder cannot take a push; the served versions are as they
  were. The message names the folder and what to do."""


@dataclass
class ServingConfig:
  directory: str = 'serving_model'  # TF-Serving layout: <directory>/<name>/<version>/
  model_name: str = 'cifar10'
  baseline_tolerance: float = 0.0  # test accuracy (0-1) a candidate may trail the served model by
  check_examples: int = 8  # test examples the staged model must answer before the push


def model_dir(serving_dir: str, model_name: str) -> str:
  """`<serving_dir>/<model_name>`; PushError unless the name is an identifier
  (so the folder stays inside `serving_dir`)."""
  if not MODEL_NAME.fullmatch(model_name) or model_name in ('.', '..'):
    raise PushError(f'serving.model_name {model_name!r} is not a model name: '
                    'use letters, digits, _, . and - (not . or ..).')
  return os.path.join(serving_dir, model_name)


def _number(name: str) -> int | None:
  """The version an entry's name stands for: ASCII digits, within int64."""
  if name.isascii() and name.isdigit() and int(name) <= _INT64_MAX:
    return int(name)
  return None


def versions(model_dir: str) -> list[int]:
  """The versions a server would load, ascending: all-digit folders."""
  return sorted(v for d in fileio.listdir(model_dir)
                if (v := _number(d)) is not None
                and fileio.isdir(os.path.join(model_dir, d)))


def next_version(model_dir: str) -> int:
  """Above every version, every all-digit name and `.last_version`."""
  taken = [v for d in fileio.listdir(model_dir) if (v := _number(d)) is not None]
  path = os.path.join(model_dir, LAST_VERSION_FILE)
  if fileio.isfile(path):  # the highest number in it counts
    taken += [v for t in _read_small(path).split() if (v := _number(t)) is not None]
  version = max(taken, default=0) + 1
  if version > _INT64_MAX:
    raise PushError(f'{model_dir} already holds version {_INT64_MAX}, the '
                    'highest TF Serving reads: remove it (and .last_version).')
  return version


def _read_small(path: str) -> str:
  """The first 4 KB of a file, as text; never blocks on a FIFO or device."""
  if fileio.is_remote(path):
    with fileio.open_file(path, 'rb') as f:
      return f.read(4096).decode('ascii', 'replace')
  with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), 'rb') as f:
    regular = stat.S_ISREG(os.fstat(f.fileno()).st_mode)
    return f.read(4096).decode('ascii', 'replace') if regular else ''


def _cannot(folder: str, error: BaseException) -> PushError:
  return PushError(f'Cannot push to {folder} ({error}): make it writable, free '
                   'space, or choose another --serving-dir; the served '
                   'versions are as they were.')


@contextlib.contextmanager
def locked(model_dir: str) -> Iterator[None]:
  """Holds `<model_dir>/.push.lock` (blocking): one push at a time."""
  try:
    fileio.makedirs(model_dir)
  except fileio.errors() as e:
    raise _cannot(model_dir, e) from None
  if fileio.is_remote(model_dir):
    with _leased(os.path.join(model_dir, LOCK_FILE)):
      yield
    return
  lock = os.path.join(model_dir, LOCK_FILE)
  try:  # non-blocking open: a FIFO in its place must not hang the push
    fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK, 0o644)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
      os.close(fd)
      raise OSError(f'{LOCK_FILE} is not a regular file; remove it')
  except OSError as e:
    raise _cannot(model_dir, e) from None
  with os.fdopen(fd, 'w') as handle:
    fcntl.flock(handle, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _leased(lock: str) -> Iterator[None]:
  """An object-store lock: a lease object holding a token and its time."""
  token = uuid.uuid4().hex
  while True:
    holder = _read_lease(lock)
    if holder is None or time.time() - holder[1] > LEASE_SECONDS:
      with fileio.open_file(lock, 'w') as f:
        f.write(f'{token} {time.time():.3f}\n')
      time.sleep(0.2)  # a writer that raced us has landed by now
      held = _read_lease(lock)
      if held and held[0] == token:
        break
    time.sleep(_POLL_SECONDS)
  try:
    yield
  finally:
    held = _read_lease(lock)
    if held and held[0] == token:
      fileio.remove(lock)


def _read_lease(lock: str) -> tuple[str, float] | None:
  if not fileio.exists(lock):
    return None
  try:
    with fileio.open_file(lock) as f:  # its last line, if a store appends
      token, stamp = f.read().split()[-2:]
    return token, float(stamp)
  except ValueError:  # torn or foreign content: treat as no lease
    return None


def _fsync_tree(root: str) -> None:
  for folder, _, files in os.walk(root):
    for name in files:
      with open(os.path.join(folder, name), 'rb') as f:
        os.fsync(f.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: str) -> None:
  handle = os.open(folder, os.O_RDONLY)
  try:
    os.fsync(handle)
  finally:
    os.close(handle)


def push(saved_model_dir: str, model_dir: str,
         check: Callable[[str], None] | None = None) -> str:
  """Copies a SavedModel to `<model_dir>/<next version>/`; call under `locked`.

  The copy goes to a hidden staging folder beside the versions and must pass
  `check(staging)` (which raises to refuse it) before it becomes a version:
  by an atomic rename on a local disk, by a copy that writes `saved_model.pb`
  last on an object store.
  """
  fileio.makedirs(model_dir)
  for name in fileio.listdir(model_dir):  # left by a push that was killed
    if name.startswith(STAGING_PREFIX):
      fileio.remove_tree(os.path.join(model_dir, name))
  staging = os.path.join(model_dir, f'{STAGING_PREFIX}{uuid.uuid4().hex}')
  remote = fileio.is_remote(model_dir)
  destination = ''
  try:
    fileio.copy_tree(saved_model_dir, staging)  # the model may be in a bucket
    if not remote:
      _fsync_tree(staging)
    if check:
      check(staging)
    version = next_version(model_dir)
    destination = os.path.join(model_dir, str(version))
    if remote:
      fileio.copy_tree(staging, destination, last=SAVED_MODEL_FILES)
    else:
      os.rename(staging, destination)
  except BaseException as e:
    fileio.remove_tree(staging)
    if remote and destination:
      fileio.remove_tree(destination)
    if isinstance(e, fileio.errors()) and not isinstance(e, PushError):
      raise _cannot(model_dir, e) from None
    raise
  if remote:
    fileio.remove_tree(staging)
  last = os.path.join(model_dir, LAST_VERSION_FILE)
  try:  # the version is served; this only keeps versions increasing
    (fileio.remove_tree if fileio.isdir(last) else fileio.remove)(last)
    with fileio.open_file(last, 'w') as f:
      f.write(f'{version}\n')
    if not remote:
      _fsync_dir(model_dir)
  except fileio.errors():
    pass
  return destination


def same_model(a: str, b: str) -> bool:
  """True if two SavedModel folders hold the same files with the same bytes."""
  if not (fileio.isdir(a) and fileio.isdir(b)):
    return False
  listing = fileio.files_under(a)
  if listing != fileio.files_under(b):
    return False
  for rel in listing:
    with fileio.open_file(os.path.join(a, rel), 'rb') as fx, fileio.open_file(
        os.path.join(b, rel), 'rb') as fy:
      while True:
        chunk = fx.read(1 << 20)
        if chunk != fy.read(1 << 20):
          return False
        if not chunk:
          break
  return True
