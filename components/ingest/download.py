"""Downloads an archive into the cache, verified before it is kept.

Called by `components.ingest.sources.resolve_source` for an http(s):// or
file:// `--data`, and for the official archive when `--data` is empty. The
rules (README, Data validation), so that the cache never lies:

- each URL has its own entry: `<hash of the whole URL>-<file name>` in the
  cache folder; the official URL keeps Keras's name, cifar-10-python.tar.gz,
  and is checked against its published MD5 whenever it is used;
- a download goes to a hidden temporary file, and becomes the entry only
  once the whole body arrived (as many bytes as its Content-Length; no byte
  missing after `STALL_SECONDS`, all within `MAX_SECONDS`, at most
  `data.max_archive_bytes`), it is not a web page, and `detect` (the
  caller's check of the archive) accepted it;
- a cached entry that fails `detect` is named in the error, which says to
  delete it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import os
import posixpath
import re
import stat
import tempfile
import time
import urllib.parse
import urllib.request
from typing import Callable, TypeVar

from components.cifar10 import OFFICIAL_MD5, OFFICIAL_URL
from components.ingest.errors import DataError

OFFICIAL_NAME = 'cifar-10-python.tar.gz'
STALL_SECONDS = 60.0  # no byte for this long: the transfer has stalled
MAX_SECONDS = 3600.0  # the whole transfer
_CHUNK = 1 << 20
T = TypeVar('T')


class DownloadFailed(Exception):
  """Nothing usable arrived (and nothing was cached); str() says why."""


def cache_path(url: str, cache: str) -> str:
  """The cache entry of `url`: one per URL, the official one by its name."""
  if url == OFFICIAL_URL:
    return os.path.join(cache, OFFICIAL_NAME)
  name = posixpath.basename(urllib.parse.unquote(urllib.parse.urlparse(url).path))
  name = re.sub(r'[^A-Za-z0-9._-]', '_', name).lstrip('.') or 'download'
  key = hashlib.sha256(url.encode('utf-8', 'surrogatepass')).hexdigest()[:16]
  return os.path.join(cache, f'{key}-{name}')


def check_official(path: str) -> None:
  """DataError unless `path` is byte for byte the published archive."""
  digest = hashlib.md5()
  if not os.path.isfile(path):  # a FIFO would hang, a device never end
    raise DataError(f'{path} is not a regular file: delete it and run again to '
                    'download the official archive afresh.')
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(_CHUNK), b''):
      digest.update(chunk)
  if digest.hexdigest() != OFFICIAL_MD5:
    raise DataError(f'{path} is not the official CIFAR-10 archive (MD5 '
                    f'{digest.hexdigest()}, published {OFFICIAL_MD5}): delete '
                    'it and run again to download it afresh.')


def fetch(url: str, cache: str, detect: Callable[[str], T],
          max_bytes: int) -> T:
  """`detect(entry)` for the cache entry of `url`, downloading it first.

  `detect` returns a dataclass with a `path` (a `sources.Source`) or raises
  DataError. Raises DownloadFailed when the transfer fails or passes
  `max_bytes`, DataError when what arrived, or what is cached, is not usable.
  """
  target = cache_path(url, cache)
  if os.path.exists(target):
    try:
      if url == OFFICIAL_URL:
        check_official(target)
      return detect(target)
    except (DataError, OSError) as e:
      raise DataError(f'{target}, the cached download of {url}, is not usable '
                      f'({getattr(e, "message", e)}): delete it and run again '
                      'to download it afresh.') from None
  tmp = _get(url, cache, os.path.basename(target), max_bytes)
  try:
    if url == OFFICIAL_URL:
      check_official(tmp)
    try:
      found = detect(tmp)
    except DataError as e:
      raise DataError(f'{url} did not give a usable archive, so nothing was '
                      f'cached: {e.message}') from None
    os.replace(tmp, target)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return dataclasses.replace(found, path=target)


def _get(url: str, cache: str, name: str, max_bytes: int) -> str:
  """A temporary file in `cache` holding the whole body of `url`."""
  tmp = ''
  try:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme.lower() == 'file':  # urllib would block on a FIFO
      local = urllib.request.url2pathname(parsed.path)
      if not stat.S_ISREG(os.stat(local).st_mode):
        raise DownloadFailed(f'{local} is not a regular file')
    os.makedirs(cache, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=cache, prefix=f'.{name}.', suffix='.part')
    with os.fdopen(handle, 'wb') as out, urllib.request.urlopen(
        url, timeout=STALL_SECONDS) as response:
      headers = response.headers
      if headers.get_content_type() in ('text/html', 'application/xhtml+xml'):
        raise DownloadFailed(f'{url} served a web page ({headers.get_content_type()}),'
                             ' not an archive: check the URL')
      declared = headers.get('Content-Length')
      declared = int(declared) if declared and declared.strip().isdigit() else None
      too_big = DownloadFailed(f'{url} is larger than {max_bytes} bytes (data.'
                               'max_archive_bytes): it is not CIFAR-10')
      if declared is not None and declared > max_bytes:
        raise too_big
      read = getattr(response, 'read1', response.read)
      got, start = 0, time.monotonic()
      while chunk := read(_CHUNK):
        got += len(chunk)
        out.write(chunk)
        if got > max_bytes:
          raise too_big
        if time.monotonic() - start > MAX_SECONDS:
          raise DownloadFailed(f'{url} took more than {MAX_SECONDS:.0f} s '
                               f'({got} bytes so far): try again later')
      if declared is not None and got != declared:
        raise DownloadFailed(f'{url} sent {got} of its {declared} bytes: '
                             'the transfer was cut; run again')
    return tmp
  except BaseException as e:
    if tmp and os.path.exists(tmp):
      os.remove(tmp)
    if isinstance(e, DownloadFailed):
      raise DownloadFailed(f'Could not download {url} into {cache} ({e})') from None
    if isinstance(e, (OSError, ValueError, http.client.HTTPException)):
      why = ('the transfer stalled for {:.0f} s'.format(STALL_SECONDS)
             if isinstance(e, TimeoutError) or 'timed out' in str(e) else
             f'{type(e).__name__}: {e}' if isinstance(
                 e, http.client.HTTPException) else e)
      raise DownloadFailed(f'Could not download {url} into {cache} ({why})'
                           ) from None
    raise
