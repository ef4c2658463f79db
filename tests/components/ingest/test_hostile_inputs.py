"""Hostile files and archives: ingestion stays within its memory, time and folders.

Run by pytest; the data sets come from conftest.py. No TensorFlow here. Each
case builds the input an attacker or a careless user would hand over (FIFOs,
links out of the tree, devices, bombs, oversized and lying files, unsafe
archive members) and asserts the DataError naming it; the bombs run in a
child process limited to 400 MB of address space and a timeout.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile

import pytest

from components.ingest import checked, limits, sources
from components.ingest.config import Limits
from components.ingest.sources import DataError, Source
from tests.components.ingest.conftest import read, tar_folder
from tests.conftest import run_bounded

pytestmark = pytest.mark.timeout(60)


def error_of(call, *args, **kwargs) -> str:
  with pytest.raises(DataError) as caught:
    call(*args, **kwargs)
  return caught.value.message


def read_all(source: Source, **kwargs) -> list:
  return [r for split in ('train', 'validation', 'test')
          for r in read(source, split, **kwargs)]


def class_file(root: str, split: str = 'train', name: str = '0000.png') -> str:
  folder = os.path.join(root, split, 'airplane')
  return os.path.join(folder, name)


def replace(path: str, make) -> None:
  os.remove(path)
  make(path)


@pytest.mark.parametrize('make, words', [
    (os.mkfifo, 'is a FIFO, not a regular file'),
    (lambda p: os.symlink('/dev/zero', p), 'is a link to /dev/zero, outside'),
    (lambda p: os.symlink('/etc/passwd', p), 'is a link to /etc/passwd, outside'),
    (lambda p: os.truncate(open(p, 'wb').name, 10 << 30),  # sparse: 10 GiB
     'is larger than 1000000 bytes'),
    (lambda p: open(p, 'wb').write(b'\x89PNG' + bytes(1_000_000)),
     'is larger than 1000000 bytes'),
])
def test_folder_files_are_regular_inside_and_small(make_tree, make, words):
  root = make_tree(train=2, test=1)
  target = class_file(root)
  replace(target, make)
  assert target in error_of(sources.resolve_source, root, root)  # in seconds
  assert words in error_of(read_all, Source('image_dir', root))  # in Beam


def test_a_device_a_link_loop_and_an_inside_link(make_tree):
  root = make_tree(train=2, test=1)
  target = class_file(root)
  try:
    replace(target, lambda p: os.mknod(p, stat.S_IFCHR | 0o600, os.makedev(1, 5)))
    assert 'is a character device' in error_of(read_all, Source('image_dir', root))
  except PermissionError:
    pass  # no CAP_MKNOD here
  replace(target, lambda p: os.symlink(p, p))
  assert 'cannot be read' in error_of(read_all, Source('image_dir', root))
  os.remove(target)  # a link inside the tree is fine
  os.symlink(class_file(root, name='0001.jpg'), target)
  assert len(read_all(Source('image_dir', root))) == 30


def _bomb(path: str, member: str, size: int) -> str:
  """A .tar.gz whose `member` inflates to `size` zero bytes (a few KB packed)."""
  info = tarfile.TarInfo(member)
  info.size = size
  chunk = gzip.compress(bytes(16 << 20), 9)
  with open(path, 'wb') as out:
    out.write(gzip.compress(info.tobuf(format=tarfile.GNU_FORMAT)))
    for _ in range(size // (16 << 20)):
      out.write(chunk)
    out.write(gzip.compress(bytes(1024)))
  return path


def test_a_gzip_bomb_is_refused_by_its_header_within_memory(tmp_path, make_tree):
  root = make_tree(train=1, test=1)
  bomb = _bomb(str(tmp_path / 'bomb.tar.gz'), 'cifar/train/cat/0000.png', 4 << 30)
  assert os.path.getsize(bomb) < 20 << 20  # 4 GiB inflated
  pickles = _bomb(str(tmp_path / 'p.tar.gz'), 'cifar-10-batches-py/data_batch_1',
                  2 << 30)
  code = (f'from components.ingest import sources\n'
          f'for path, kind in (({bomb!r}, "image_archive"), ({pickles!r}, '
          f'"pickle_archive")):\n'
          f'  try:\n'
          f'    sources.resolve_source(path, {str(tmp_path)!r})\n'
          f'  except sources.DataError as e:\n'
          f'    print(e.message)\n'
          f'  try:\n'
          f'    list(sources.read_split(sources.Source(kind, path), "test", '
          f'validation_fraction=0.1, salt=""))\n'
          f'  except sources.DataError as e:\n'
          f'    print(e.message)\n')
  done = run_bounded(code, memory_mb=400, timeout=60, cwd=root)
  assert done.returncode == 0, done.stderr
  lines = done.stdout.splitlines()
  assert len(lines) == 4, done.stdout
  assert lines[0].startswith(f'cifar/train/cat/0000.png in {bomb} is '
                             f'{4 << 30} bytes, more than')
  assert all('remove it or repack' in line for line in lines)


def test_archives_past_their_entry_or_byte_budget_stop(make_tree, tmp_path):
  archive = tar_folder(str(tmp_path / 'tree.tgz'), make_tree(train=2, test=1),
                       'cifar')
  small = Limits(archive_bytes=20_000)
  message = error_of(sources.resolve_source, archive, str(tmp_path), small)
  assert 'inflates past 20000 bytes (data.max_archive_bytes)' in message
  assert 'in {archive} is larger than 100 bytes'.format(archive=archive) in (
      error_of(read_all, Source('image_archive', archive),
               limits=Limits(file_bytes=100)))


def _unsafe_members(archive: str, tree: str) -> None:
  """A good tree plus members that must never be read: '..', absolute names,
  links (to /etc/passwd, /dev/zero, inside the tree), a device, a FIFO."""
  tar_folder(archive, tree, 'cifar')
  with tarfile.open(archive, 'r:gz') as tar:
    kept = [(m, tar.extractfile(m).read() if m.isfile() else None)
            for m in tar.getmembers()]
  with open(class_file(tree), 'rb') as f:
    png = f.read()
  with tarfile.open(archive, 'w:gz') as tar:
    for member, data in kept:
      tar.addfile(member, io.BytesIO(data) if data is not None else None)
    for name in ('../cifar/train/cat/up.png', 'cifar/train/cat/../../x.png',
                 '/cifar/train/cat/abs.png', 'C:/cifar/train/cat/c.png'):
      info = tarfile.TarInfo(name)
      info.size = len(png)
      tar.addfile(info, io.BytesIO(png))
    for name, kind, target in (('sym.png', tarfile.SYMTYPE, '/etc/passwd'),
                               ('zero.png', tarfile.SYMTYPE, '/dev/zero'),
                               ('hard.png', tarfile.LNKTYPE, 'cifar/train/cat/0000.png'),
                               ('dev.png', tarfile.CHRTYPE, ''),
                               ('fifo.png', tarfile.FIFOTYPE, '')):
      info = tarfile.TarInfo(f'cifar/train/cat/{name}')
      info.type, info.linkname = kind, target
      tar.addfile(info)


def test_unsafe_archive_members_are_skipped(make_tree, tmp_path):
  tree = make_tree(train=2, test=1)
  archive = str(tmp_path / 'unsafe.tgz')
  _unsafe_members(archive, tree)
  before = sorted(os.listdir(tmp_path))
  source = sources.resolve_source(archive, str(tmp_path))
  assert source == Source('image_archive', archive)
  ids = [r[0] for split in ('train', 'validation', 'test')
         for r in read(source, split)]
  assert len(ids) == 30 and all(i.count('/') == 2 for i in ids)
  assert not [i for i in ids if i.rsplit('/', 1)[1] in (
      'up.png', 'x.png', 'abs.png', 'c.png', 'sym.png', 'zero.png', 'hard.png',
      'dev.png', 'fifo.png')]
  written = set(os.listdir(tmp_path)) - {checked.MEMO_FILE}  # the cache's memo
  assert sorted(written) == before  # nothing extracted anywhere
  with tarfile.open(archive) as tar:
    names = [m.name for m in limits.members(tar, archive, Limits())]
  assert not [n for n in names if '..' in n or n.startswith(('/', 'C:'))]


def test_a_pickled_batch_is_bounded_by_its_own_limit(make_pickles):
  folder = make_pickles(per_class=1)
  batch = os.path.join(folder, 'data_batch_2')
  assert 'is larger than 1000 bytes' in error_of(
      read_all, Source('pickle_dir', folder), limits=Limits(batch_bytes=1000))
  replace(batch, os.mkfifo)
  assert f'{batch} is a FIFO' in error_of(read_all, Source('pickle_dir', folder))
  replace(batch, lambda p: os.symlink('/dev/zero', p))
  assert 'outside' in error_of(read_all, Source('pickle_dir', folder))


def test_names_that_are_not_utf8_are_named_at_once(make_tree, tmp_path):
  root = make_tree(train=2, test=1)
  folder = os.path.join(root, 'test', 'ship').encode()
  with open(os.path.join(folder, b'caf\xe9.png'), 'wb') as f:  # Latin-1
    with open(class_file(root), 'rb') as png:
      f.write(png.read())
  message = error_of(sources.resolve_source, root, str(tmp_path))
  assert message == (f'{root}/test/ship/caf\ufffd.png has a name that is not '
                     'UTF-8 text: rename it or remove it.')
  message.encode('utf-8')  # printable as it is
  archive = tar_folder(str(tmp_path / 'latin.tgz'), root, 'cifar')
  assert 'has a name that is not UTF-8 text' in error_of(
      sources.resolve_source, archive, str(tmp_path))
