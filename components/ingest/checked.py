"""Remembers which local archives passed the check of `--data`, so an
unchanged archive is not listed again on every run.

Called by `components.ingest.sources` when it recognises a local archive.
Listing CIFAR-10's 60,000 members takes about 3 s, most of a cached run's
time outside imports. An archive counts as unchanged when its path, device,
inode, size, modification and change times (`st_ctime` is set by the kernel:
`touch` cannot put it back), the read limits and the ingest code (its
`code_fingerprint`) are all the same as when it passed; anything else checks
it again. ExampleGen reads every member through the same limits whatever the
memo says, so a stale entry can cost a later, longer error, never a read past
a limit.

The memo is a small JSON file in the data cache folder (`data.cache_dir`).
It is read as untrusted input, through `limits.read_file` (a regular file
inside the cache folder, at most `MAX_BYTES`), JSON only, entries that are
not a known kind ignored. It is a speed-up only: a memo that cannot be
read or written is ignored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile

from components.fingerprint import code_fingerprint
from components.ingest import limits as limits_lib
from components.ingest.config import Limits
from components.ingest.errors import DataError

MEMO_FILE = 'cifar10-tfx-checked.json'
MAX_ENTRIES = 32  # archives remembered; the oldest is forgotten first
MAX_BYTES = 64 * 1024  # a larger memo is not read
_CODE = 'components.ingest.sources'  # the check, with what it imports
_log = logging.getLogger(__name__)


def key(path: str, limits: Limits) -> str | None:
  """What identifies this check of the local archive at `path`; None if it
  cannot be stat'ed."""
  try:
    st = os.stat(path)
  except OSError:
    return None
  identity = [os.path.realpath(path), st.st_dev, st.st_ino, st.st_size,
              st.st_mtime_ns, st.st_ctime_ns, dataclasses.asdict(limits),
              code_fingerprint(_CODE)]
  return hashlib.sha256(json.dumps(identity).encode()).hexdigest()


def _read(cache: str) -> dict[str, str]:
  try:  # a regular file in `cache`, at most MAX_BYTES: a FIFO never blocks
    entries = json.loads(limits_lib.read_file(
        os.path.join(cache, MEMO_FILE), cache, MAX_BYTES))
  except (DataError, ValueError):
    return {}
  if not isinstance(entries, dict):
    return {}
  return {k: v for k, v in entries.items()
          if isinstance(k, str) and isinstance(v, str)}


def recall(cache: str, check: str, kinds: tuple[str, ...]) -> str | None:
  """The kind the archive of `check` (a `key`) was found to be, if it
  passed before and the kind is one of `kinds`."""
  kind = _read(cache).get(check)
  return kind if kind in kinds else None


def remember(cache: str, check: str, kind: str) -> None:
  """Records that the archive of `check` passed as `kind` (atomically)."""
  entries = _read(cache)
  entries.pop(check, None)
  entries[check] = kind
  kept = dict(list(entries.items())[-MAX_ENTRIES:])
  try:
    os.makedirs(cache, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=cache, prefix=f'.{MEMO_FILE}.')
    try:
      with os.fdopen(handle, 'w') as f:
        json.dump(kept, f)
      os.replace(temporary, os.path.join(cache, MEMO_FILE))
    except BaseException:
      os.unlink(temporary)
      raise
  except OSError as error:
    _log.debug('Not remembering the check of the data (%s).', error)
