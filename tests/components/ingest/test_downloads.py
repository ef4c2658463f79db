"""Downloads are verified before they are cached, and the cache never lies.

Run by pytest against a local HTTP server on 127.0.0.1 that misbehaves on
purpose (web pages with status 200, short bodies, stalls, two URLs whose
files share a name); the archives come from conftest.py. No TensorFlow here.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
import time

import pytest

from components.ingest import download, sources
from components.ingest.config import Limits
from components.ingest.sources import DataError, Source
from tests.components.ingest.conftest import read

pytestmark = pytest.mark.timeout(60)


class _Server:
  """Answers GET /<route>/... with what `routes[route]` says."""

  def __init__(self, routes: dict):
    server = self

    class Handler(http.server.BaseHTTPRequestHandler):
      def do_GET(self):  # pylint: disable=invalid-name
        server.requests.append(self.path)
        kind, body, length, pause = routes[self.path.split('/')[1]]
        self.send_response(200)
        self.send_header('Content-Type', kind)
        self.send_header('Content-Length', str(length or len(body)))
        self.end_headers()
        self.wfile.write(body[:len(body) // 2])
        self.wfile.flush()
        time.sleep(pause)
        self.wfile.write(body[len(body) // 2:])

      def log_message(self, *args):
        pass

    self.requests: list[str] = []
    self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    self.url = f'http://127.0.0.1:{self.httpd.server_address[1]}'
    threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server(pickle_data, tree_data):
  with open(pickle_data.archive, 'rb') as f:
    pickles = f.read()
  with open(tree_data.archive, 'rb') as f:
    tree = f.read()
  gz = 'application/gzip'
  served = _Server({
      'a': (gz, pickles, 0, 0), 'b': (gz, tree, 0, 0),
      'html': ('text/html; charset=utf-8', b'<html>Sign in</html>' * 50, 0, 0),
      'text': ('text/plain', b'Service temporarily unavailable\n', 0, 0),
      'short': (gz, pickles[:5000], len(pickles), 0),
      'stall': (gz, pickles, 0, 5),
      'huge': (gz, pickles, 10 ** 12, 0)})
  yield served
  served.httpd.shutdown()
  served.httpd.server_close()


def failure(url: str, cache: str, limits: Limits = Limits()) -> str:
  with pytest.raises(DataError) as caught:
    sources.resolve_source(url, cache, limits)
  return caught.value.message


@pytest.mark.parametrize('route, words', [
    ('html', 'served a web page (text/html), not an archive'),
    ('text', 'did not give a usable archive, so nothing was cached'),
    ('short', 'bytes: the transfer was cut'),
    ('stall', 'the transfer stalled for 1 s'),
    ('huge', 'is larger than 1000000000 bytes (data.max_archive_bytes)'),
])
def test_a_bad_transfer_is_never_cached(server, tmp_path, monkeypatch, route,
                                        words):
  monkeypatch.setattr(download, 'STALL_SECONDS', 1.0)
  cache = str(tmp_path / 'cache')
  url = f'{server.url}/{route}/cifar-10-python.tar.gz'
  start = time.monotonic()
  assert words in failure(url, cache)
  assert time.monotonic() - start < 10
  assert os.listdir(cache) == []  # no entry, no temporary


def test_urls_sharing_a_file_name_get_their_own_entries(server, tmp_path):
  cache = str(tmp_path)
  first = sources.resolve_source(f'{server.url}/a/data.tar.gz', cache)
  second = sources.resolve_source(f'{server.url}/b/data.tar.gz', cache)
  assert (first.kind, second.kind) == ('pickle_archive', 'image_archive')
  assert first.path != second.path and len(server.requests) == 2
  assert sources.resolve_source(f'{server.url}/b/data.tar.gz', cache) == second
  assert len(server.requests) == 2  # cached
  with open(second.path, 'wb') as f:  # damaged later (disk, a killed copy...)
    f.write(b'<html>')
  message = failure(f'{server.url}/b/data.tar.gz', cache)
  assert message.startswith(f'{second.path}, the cached download of '
                            f'{server.url}/b/data.tar.gz, is not usable')
  assert message.endswith('delete it and run again to download it afresh.')
  os.remove(second.path)
  assert sources.resolve_source(f'{server.url}/b/data.tar.gz', cache) == second
  with open(os.path.join(cache, '.data.tar.gz.x.part'), 'wb') as f:
    f.write(b'interrupted')  # a killed download's temporary is never used
  assert len(read(sources.resolve_source(f'{server.url}/a/data.tar.gz', cache),
                  'test')) == 40


def test_the_official_archive_is_checked_against_its_md5(server, pickle_data,
                                                         tmp_path, monkeypatch):
  url = f'{server.url}/a/cifar-10-python.tar.gz'
  monkeypatch.setattr(sources, 'OFFICIAL_URL', url)
  monkeypatch.setattr(download, 'OFFICIAL_URL', url)
  cache = str(tmp_path)
  message = failure('', cache)
  assert 'is not the official CIFAR-10 archive (MD5' in message
  assert os.listdir(cache) == []
  with open(pickle_data.archive, 'rb') as f:
    monkeypatch.setattr(download, 'OFFICIAL_MD5', hashlib.md5(f.read()).hexdigest())
  entry = os.path.join(cache, 'cifar-10-python.tar.gz')
  assert sources.resolve_source('', cache) == Source('pickle_archive', entry)
  with open(entry, 'r+b') as f:  # one byte flipped in the cached copy
    f.seek(100)
    byte = f.read(1)
    f.seek(100)
    f.write(bytes([byte[0] ^ 1]))
  for spec in ('', url):
    message = failure(spec, cache)
    assert message.startswith(f'{entry}') and 'delete it' in message


def test_file_urls_to_fifos_and_folders_fail_at_once(tmp_path):
  fifo = tmp_path / 'cifar-10-python.tar.gz'
  os.mkfifo(fifo)
  assert 'is not a regular file' in failure(f'file://{fifo}', str(tmp_path / 'c'))
  assert 'No such file' in failure(f'file://{tmp_path}/nope.tgz', str(tmp_path))
  assert 'is not a regular file or folder' in failure(str(fifo), str(tmp_path))
  cache = tmp_path / 'keras'
  cache.mkdir()
  os.mkfifo(cache / 'cifar-10-python.tar.gz')  # where Keras keeps the archive
  assert failure('', str(cache)).startswith(
      f'{cache}/cifar-10-python.tar.gz is not a regular file: delete it')
