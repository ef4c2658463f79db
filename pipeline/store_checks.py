"""Checks the pipeline root and its ML Metadata store before TFX opens them.

Called by `pipeline/local.py` (`check_root`, first thing in `run`) and by the
`runs` and `report` commands (`check_store`). Given a truncated or garbage
`metadata.sqlite`, ml-metadata fails deep inside TFX with a traceback; a
read-only root fails at the run's lock. Each becomes one `StoreError` (a
`UserError`) that names the file or folder and says what to do. Nothing here
writes to the store or changes the served models.
"""

from __future__ import annotations

import os
import sqlite3
import stat

from components.errors import UserError

SQLITE_HEADER = b'SQLite format 3\x00'


class StoreError(UserError):
  """The pipeline root or its metadata store is unusable; str() says which."""


def check_root(root: str, metadata_path: str) -> None:
  """Raises StoreError unless `root` is (or can be made) a writable folder
  holding a usable store (or none yet)."""
  folder = os.path.abspath(root)
  try:
    os.makedirs(folder, exist_ok=True)
  except OSError as e:
    raise StoreError(f'Cannot create the pipeline root {folder} ({e.strerror}):'
                     ' choose another --root or fix its parent.') from None
  if not os.access(folder, os.W_OK | os.X_OK):
    raise StoreError(f'The pipeline root {folder} is not writable: make it '
                     'writable (chmod u+w) or choose another --root.')
  lock = os.path.join(folder, '.lock')  # local.py opens it for writing
  if os.path.lexists(lock) and not stat.S_ISREG(os.lstat(lock).st_mode):
    raise StoreError(f'{lock} is not a plain file (a link, FIFO or folder): '
                     'remove it; it only marks a run in progress.')
  check_store(metadata_path, writable=True)


def check_store(path: str, writable: bool = False) -> None:
  """Raises StoreError if the SQLite store at `path` exists but is not one
  (or, `writable`, cannot be written); nothing if it does not exist."""
  path = os.path.abspath(path)
  if not os.path.lexists(path):
    return
  fix = ('move it away (the runs it recorded are lost; the next run starts '
         'a new store and recomputes what is not served) or restore it from '
         'a backup')
  try:
    handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(handle).st_mode):
      os.close(handle)
      raise StoreError(f'The metadata store {path} is not a regular file: '
                       f'{fix}.')
    with os.fdopen(handle, 'rb') as f:
      head = f.read(100)
  except OSError as e:
    raise StoreError(f'The metadata store {path} cannot be read ({e.strerror}):'
                     f' fix its permissions or {fix}.') from None
  if not head:
    return  # SQLite makes an empty file a new database
  if not head.startswith(SQLITE_HEADER) or len(head) < 100:
    raise StoreError(f'The metadata store {path} is not an SQLite database '
                     f'(it starts with {head[:16]!r}): {fix}.')
  try:
    with sqlite3.connect(f'file:{path}?mode=ro', uri=True) as db:
      result = db.execute('PRAGMA quick_check').fetchone()[0]
  except sqlite3.Error as e:
    result = str(e)
  if result != 'ok':
    raise StoreError(f'The metadata store {path} is damaged ({result}): {fix}.')
  if writable and not os.access(path, os.W_OK):
    raise StoreError(f'The metadata store {path} is read-only: make it '
                     'writable (chmod u+w) or choose another --root.')
