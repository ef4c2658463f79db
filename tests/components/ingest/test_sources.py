"""Tests of components.ingest.sources: layouts, splits, pixels, downloads.

Bad files and their messages are in test_source_errors.py.

Run by pytest; the data sets come from conftest.py. No TensorFlow here.
"""

from __future__ import annotations

import glob
import hashlib
import http.server
import io
import os
import shutil
import tarfile
import threading

import numpy as np
import pytest
from PIL import Image

from components.ingest import checked, download, sources
from components.ingest.sources import DataError, Source
from tests.components.ingest.conftest import FRACTION, read

def decode(encoded: bytes) -> np.ndarray:
  with Image.open(io.BytesIO(encoded)) as image:
    assert image.format in ('PNG', 'JPEG')
    assert (image.mode, image.size) == ('RGB', (32, 32))
    return np.asarray(image)


def per_class(records: list) -> list[int]:
  return np.bincount([label for _, label, _ in records], minlength=10).tolist()


def test_resolve_detects_each_layout(pickle_data, tree_data, tmp_path):
  resolve = lambda spec: sources.resolve_source(spec, str(tmp_path))
  assert resolve(pickle_data.folder) == Source('pickle_dir', pickle_data.folder)
  parent = os.path.dirname(pickle_data.folder)  # the folder one level down
  assert resolve(parent) == Source('pickle_dir', pickle_data.folder)
  assert resolve(pickle_data.archive) == Source('pickle_archive',
                                                pickle_data.archive)
  renamed = shutil.copy(pickle_data.archive, tmp_path / 'download.bin')
  assert resolve(str(renamed)) == Source('pickle_archive', str(renamed))
  assert resolve(tree_data.folder) == Source('image_dir', tree_data.root)
  assert resolve(tree_data.root) == Source('image_dir', tree_data.root)
  assert resolve(tree_data.archive) == Source('image_archive', tree_data.archive)


def test_split_patterns_match_the_source_files(pickle_data, tree_data):
  for source, expected in (
      (Source('pickle_dir', pickle_data.folder), (5, 5, 1)),
      (Source('image_dir', tree_data.root), (60, 60, 20)),
      (Source('pickle_archive', pickle_data.archive), (1, 1, 1)),
      (Source('image_archive', tree_data.archive), (1, 1, 1))):
    base, patterns = sources.split_patterns(source)
    assert list(patterns) == ['train', 'validation', 'test']
    counts = tuple(len(glob.glob(os.path.join(base, patterns[s])))
                   for s in sources.SPLITS)
    assert counts == expected, source


@pytest.mark.parametrize('kind', ['pickle_dir', 'pickle_archive'])
def test_pickle_splits_labels_and_pixels(pickle_data, kind):
  source = Source(kind, pickle_data.folder if kind == 'pickle_dir'
                  else pickle_data.archive)
  train, val, test = (read(source, s) for s in sources.SPLITS)
  assert per_class(train) == [15] * 10  # 5 batches x 4 per class, 1/4 out
  assert per_class(val) == [5] * 10
  assert per_class(test) == [4] * 10
  train_ids, val_ids = {r[0] for r in train}, {r[0] for r in val}
  assert not train_ids & val_ids
  assert train_ids | val_ids == {f'data_batch_{b}/{i:05d}'
                                 for b in range(1, 6) for i in range(40)}
  for image_id, label, png in train + val + test:
    name, row = image_id.split('/')
    batch = pickle_data.batches[name]
    assert label == batch[b'labels'][int(row)]
    hwc = batch[b'data'][int(row)].reshape(3, 32, 32).transpose(1, 2, 0)
    np.testing.assert_array_equal(decode(png), hwc)


def test_pickle_archive_reads_like_its_folder(pickle_data):
  for split in sources.SPLITS:
    assert (read(Source('pickle_dir', pickle_data.folder), split) ==
            read(Source('pickle_archive', pickle_data.archive), split))


def test_validation_is_deterministic_stratified_and_salted(pickle_data):
  source = Source('pickle_dir', pickle_data.folder)
  val = read(source, 'validation')
  assert [r[0] for r in val] == [r[0] for r in read(source, 'validation')]
  for label in range(10):  # the documented rule, recomputed here
    ids = [f'{n}/{i:05d}' for n in sorted(pickle_data.batches) if n != 'test_batch'
           for i, l in enumerate(pickle_data.batches[n][b'labels']) if l == label]
    ids.sort(key=lambda i: hashlib.sha256(f'test-salt\0{i}'.encode()).digest())
    assert {r[0] for r in val if r[1] == label} == set(ids[:5])
  other = read(source, 'validation', salt='another-salt')
  assert {r[0] for r in other} != {r[0] for r in val}
  assert per_class(other) == [5] * 10


def test_per_class_caps_keep_the_first_ids(pickle_data):
  source = Source('pickle_archive', pickle_data.archive)
  train = read(source, 'train', train_per_class=8)
  val = read(source, 'validation', train_per_class=8)
  assert per_class(train) == [6] * 10 and per_class(val) == [2] * 10
  for label in range(10):
    ids = sorted(f'{n}/{i:05d}' for n in pickle_data.batches if n != 'test_batch'
                 for i, l in enumerate(pickle_data.batches[n][b'labels'])
                 if l == label)
    assert {r[0] for r in train + val if r[1] == label} == set(ids[:8])
  assert per_class(read(source, 'validation', train_per_class=2)) == [1] * 10
  with pytest.raises(DataError, match='validation split .* would hold no images'):
    read(source, 'validation', train_per_class=1)  # 0.25 rounds to none
  test = read(source, 'test', test_per_class=1)
  assert per_class(test) == [1] * 10
  labels = pickle_data.batches['test_batch'][b'labels']
  assert {r[0] for r in test} == {f'test_batch/{labels.index(c):05d}'
                                  for c in range(10)}


@pytest.mark.parametrize('kind', ['image_dir', 'image_archive'])
def test_tree_splits_labels_and_pixels(tree_data, kind):
  source = Source(kind, tree_data.root if kind == 'image_dir'
                  else tree_data.archive)
  train, val, test = (read(source, s) for s in sources.SPLITS)
  assert per_class(train) == [4] * 10 and per_class(val) == [2] * 10
  assert per_class(test) == [2] * 10
  assert not {r[0] for r in train} & {r[0] for r in val}
  assert {r[0] for r in train + val + test} == set(tree_data.labels)
  kept = 0
  for image_id, label, encoded in train + val + test:
    assert label == tree_data.labels[image_id]
    with open(os.path.join(tree_data.root, image_id), 'rb') as f:
      raw = f.read()
    with Image.open(io.BytesIO(raw)) as image:
      expected = np.asarray(image.convert('RGB'))  # gray/RGBA/palette too
      rgb = image.mode == 'RGB'
    np.testing.assert_array_equal(decode(encoded), expected)
    # 8-bit RGB PNG/JPEG files travel byte for byte; the others become PNG.
    assert (encoded == raw) == rgb, image_id
    assert rgb or encoded.startswith(b'\x89PNG\r\n\x1a\n')
    kept += rgb
  assert kept == len(tree_data.labels) - 9  # 3 classes x (RGBA, L, P)
  assert {r[1] for r in train if r[0].startswith('train/Cat/')} == {3}


def test_tree_archive_reads_like_its_folder(tree_data):
  for split in sources.SPLITS:
    assert sorted(read(Source('image_dir', tree_data.root), split)) == sorted(
        read(Source('image_archive', tree_data.archive), split))


def test_tree_caps(tree_data):
  source = Source('image_dir', tree_data.root)
  kept = read(source, 'train', train_per_class=3) + read(
      source, 'validation', train_per_class=3)
  assert per_class(kept) == [3] * 10
  assert all(r[0].rsplit('/', 1)[1] in ('0000.png', '0001.jpg', '0002.png')
             for r in kept)
  assert per_class(read(source, 'test', test_per_class=1)) == [1] * 10


class _Server:
  """A local HTTP server over one folder that counts the GET requests."""

  def __init__(self, folder: str):
    server = self

    class Handler(http.server.SimpleHTTPRequestHandler):
      def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=folder, **kwargs)

      def do_GET(self):  # pylint: disable=invalid-name
        server.requests += 1
        super().do_GET()

      def log_message(self, *args):
        pass

    self.requests = 0
    self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    self.url = f'http://127.0.0.1:{self.httpd.server_address[1]}'
    threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server(pickle_data):
  served = _Server(os.path.dirname(pickle_data.archive))
  yield served
  served.httpd.shutdown()
  served.httpd.server_close()


def test_url_downloads_once_into_the_cache(server, pickle_data, tmp_path):
  cache = tmp_path / 'cache' / 'datasets'
  url = f'{server.url}/cifar-10-python.tar.gz'
  source = sources.resolve_source(url, str(cache))
  entry = download.cache_path(url, str(cache))  # keyed by the whole URL
  assert source == Source('pickle_archive', entry)
  assert os.path.basename(entry).endswith('-cifar-10-python.tar.gz')
  assert server.requests == 1
  with open(source.path, 'rb') as got, open(pickle_data.archive, 'rb') as want:
    assert got.read() == want.read()
  assert sources.resolve_source(url, str(cache)) == source
  assert server.requests == 1  # the cached copy was used
  assert sorted(os.listdir(cache)) == sorted([os.path.basename(entry),  # no
                                             checked.MEMO_FILE])  # temporary left


def test_failed_download_leaves_nothing(server, tmp_path):
  with pytest.raises(DataError, match='Could not download .*404') as caught:
    sources.resolve_source(f'{server.url}/missing.tar.gz', str(tmp_path))
  assert '--data accepts' in caught.value.message
  assert os.listdir(tmp_path) == []


def test_file_url(pickle_data, tmp_path):
  url = 'file://' + pickle_data.archive
  source = sources.resolve_source(url, str(tmp_path))
  assert source == Source('pickle_archive', download.cache_path(url, str(tmp_path)))


def test_empty_spec_finds_the_cached_copy(pickle_data, tmp_path, monkeypatch):
  monkeypatch.setattr(sources, 'OFFICIAL_URL', 'http://127.0.0.1:1/x.tar.gz')
  monkeypatch.setenv('HOME', str(tmp_path))
  cache = tmp_path / 'cache'
  cache.mkdir()
  shutil.copytree(pickle_data.folder, cache / 'cifar-10-batches-py')
  assert sources.resolve_source('', '~/cache') == Source(
      'pickle_dir', str(cache / 'cifar-10-batches-py'))
  shutil.copy(pickle_data.archive, cache)
  with open(pickle_data.archive, 'rb') as f:  # it stands for the official one
    monkeypatch.setattr(download, 'OFFICIAL_MD5', hashlib.md5(f.read()).hexdigest())
  assert sources.resolve_source('', str(cache)) == Source(
      'pickle_archive', str(cache / 'cifar-10-python.tar.gz'))


def test_empty_spec_offline_says_what_to_do(tmp_path, monkeypatch):
  monkeypatch.setattr(sources, 'OFFICIAL_URL',
                      'http://127.0.0.1:1/cifar-10-python.tar.gz')
  with pytest.raises(DataError) as caught:
    sources.resolve_source('', str(tmp_path))
  message = caught.value.message
  assert message.startswith('Could not download http://127.0.0.1:1/')
  assert '--data accepts' in message and 'cifar-10-batches-py/' in message
  assert os.listdir(tmp_path) == []


def test_unusable_paths(tree_data, tmp_path):
  def message(spec: str) -> str:
    with pytest.raises(DataError) as caught:
      sources.resolve_source(spec, str(tmp_path))
    assert '--data accepts' in caught.value.message
    return caught.value.message
  assert message(str(tmp_path / 'nope')).startswith(
      f'{tmp_path / "nope"} does not exist')
  (tmp_path / 'junk').mkdir()
  (tmp_path / 'junk' / 'notes.txt').write_text('hello')
  assert 'is neither CIFAR-10 batches nor an image tree' in message(
      str(tmp_path / 'junk'))
  assert 'is not a readable .tar.gz archive' in message(
      str(tmp_path / 'junk' / 'notes.txt'))
  with tarfile.open(tmp_path / 'odd.tar.gz', 'w:gz') as tar:
    tar.add(tmp_path / 'junk', arcname='junk')
  assert 'holds neither' in message(str(tmp_path / 'odd.tar.gz'))
  shutil.copytree(tree_data.root, tmp_path / 'two' / 'a')
  shutil.copytree(tree_data.root, tmp_path / 'two' / 'b')
  assert 'several data sets' in message(str(tmp_path / 'two'))


@pytest.mark.parametrize('kind', ['pickle_archive', 'image_archive'])
def test_all_splits_come_from_one_pass_in_each_split_s_own_order(
    pickle_data, tree_data, kind, monkeypatch):
  """ExampleGen reads every split in one pass (train and validation share
  files): each split's records are those it has alone, in the same order,
  and the archive is opened once."""
  from components import fileio
  path = pickle_data.archive if kind == 'pickle_archive' else tree_data.archive
  source = Source(kind, path)
  alone = {s: read(source, s) for s in sources.SPLITS}
  opened = []
  real_open_tar = fileio.open_tar
  monkeypatch.setattr(fileio, 'open_tar',
                      lambda *a, **k: opened.append(a) or real_open_tar(*a, **k))
  together = list(sources.read_splits(source, sources.SPLITS,
                                      validation_fraction=FRACTION, salt='test-salt'))
  assert len(opened) == 1
  for split in sources.SPLITS:
    assert [r[1:] for r in together if r[0] == split] == alone[split]
