"""Tests of components.ingest.sources: bad files end with one clear message.

Run by pytest; the data sets come from conftest.py. No TensorFlow here. Each
broken batch, image or archive is rejected with a DataError that names the
file (or archive member) and says what to do.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import shutil
import tarfile

import numpy as np
import pytest
from PIL import Image

from components.ingest import sources
from components.errors import UserError
from components.ingest.sources import DataError, Source
from tests.components.ingest.conftest import read


def read_error(source: Source, split: str = 'train') -> str:
  with pytest.raises(DataError) as caught:
    read(source, split)
  return caught.value.message


def rewrite(path: str, batch) -> None:
  with open(path, 'wb') as f:
    pickle.dump(batch, f, protocol=2)


class _Evil:
  def __init__(self, marker: str):
    self.marker = marker

  def __reduce__(self):
    return (os.system, (f'touch {self.marker}',))


def test_pickle_errors_name_the_file(make_pickles):
  folder = make_pickles(per_class=1)
  source = Source('pickle_dir', folder)
  batch_3 = os.path.join(folder, 'data_batch_3')
  with open(batch_3, 'rb') as f:
    batch = pickle.load(f, encoding='bytes')
  batch[b'labels'][7] = 10
  rewrite(batch_3, batch)
  assert read_error(source).startswith(
      f'{batch_3}: record 7 has label 10, outside 0-9')
  assert len(read(source, 'test')) == 10  # test_batch is fine
  rewrite(batch_3, {b'batch_label': b'x', b'labels': [0]})
  assert read_error(source).startswith(f'{batch_3} is not a CIFAR-10 batch')
  rewrite(batch_3, {b'data': np.zeros((10, 100), np.uint8), b'labels': [0] * 10})
  assert 'expected N x 3072 uint8' in read_error(source)
  with open(batch_3, 'wb') as f:
    f.write(b'\x00not a pickle at all')
  assert 'does not unpickle' in read_error(source)
  marker = os.path.join(folder, 'owned')
  rewrite(batch_3, _Evil(marker))  # runs code when loaded by a plain pickle.load
  assert '.system is not allowed' in read_error(source)
  assert not os.path.exists(marker)
  os.remove(batch_3)
  assert read_error(source).startswith(f'{batch_3} cannot be read')
  rewrite(os.path.join(folder, 'batches.meta'), {b'label_names': [b'apple']})
  assert 'not those of CIFAR-10' in read_error(source, 'test')


def test_pickle_archive_error_names_the_member(make_pickles, tmp_path):
  folder = make_pickles(per_class=1)
  rewrite(os.path.join(folder, 'test_batch'), {b'labels': []})
  archive = str(tmp_path / 'c.tar.gz')
  with tarfile.open(archive, 'w:gz') as tar:
    tar.add(folder, arcname='cifar-10-batches-py')
  message = read_error(Source('pickle_archive', archive), 'test')
  assert message.startswith(
      f'cifar-10-batches-py/test_batch in {archive} is not a CIFAR-10 batch')


def test_tree_errors_name_the_folder_or_file(make_tree):
  root = make_tree(train=2, test=1)
  source = Source('image_dir', root)
  path = lambda *parts: os.path.join(root, *parts)
  open(path('train', 'dog', '.DS_Store'), 'w').close()  # hidden: ignored
  assert len(read(source, 'train') + read(source, 'validation')) == 20
  with open(path('train', 'dog', '0000.png'), 'wb') as f:
    f.write(b'not an image')
  assert read_error(source).startswith(
      f'{path("train", "dog", "0000.png")} does not decode as an image')
  assert read_error(source).endswith('remove it or fix it.')
  Image.new('RGB', (16, 16)).save(path('train', 'dog', '0000.png'))
  assert read_error(source) == (f'{path("train", "dog", "0000.png")} is 16x16 '
                                'pixels, not 32x32: remove it or resize it.')
  os.remove(path('train', 'dog', '0000.png'))
  open(path('train', 'dog', 'notes.txt'), 'w').close()
  assert read_error(source).startswith(f'{path("train", "dog", "notes.txt")} '
                                       'is not a .png/.jpg/.jpeg image')
  shutil.rmtree(path('train', 'dog'))
  os.makedirs(path('train', 'dog'))
  assert read_error(source).startswith(
      f'Class folder {path("train", "dog")} is empty')
  os.rename(path('train', 'dog'), path('train', 'dogs'))
  assert read_error(source).startswith(
      f'Folder {path("train", "dogs")} is not a CIFAR-10 class')
  with pytest.raises(DataError, match='dogs is not a CIFAR-10 class'):
    sources.resolve_source(root, root)  # found before any pipeline runs
  shutil.rmtree(path('test', 'truck'))
  assert read_error(source, 'test').startswith(
      f'{path("test")} lacks the class folder(s) truck')
  shutil.rmtree(path('test'))
  os.makedirs(path('test'))
  assert read_error(source, 'test').startswith(
      f'{path("test")} holds no class folders')


def test_tree_archive_error_names_member_and_archive(make_tree, tmp_path):
  root = make_tree(train=1, test=1)
  with open(os.path.join(root, 'test', 'ship', '0000.png'), 'wb') as f:
    f.write(b'garbage')
  archive = str(tmp_path / 'images.tar.gz')
  with tarfile.open(archive, 'w:gz') as tar:
    tar.add(root, arcname='.')
  assert sources.resolve_source(archive, str(tmp_path)).kind == 'image_archive'
  assert read_error(Source('image_archive', archive), 'test').startswith(
      f'test/ship/0000.png in {archive} does not decode as an image')


def test_find_data_error_unwraps_what_beam_raises():
  error = DataError('data_batch_1: record 3 has label 10.\nFix it.')
  assert error.message == 'data_batch_1: record 3 has label 10.\nFix it.'
  assert sources.find_data_error(error) == error.message
  # Beam's _reraise_augmented: type(exn)(exn.args[0] + step_annotation).
  again = type(error)(error.args[0] + " [while running 'Read[train]']")
  assert again.message == error.message and str(again) == str(error)
  assert isinstance(again, UserError)
  # Text is never parsed: only the exception objects and their chain count.
  text = RuntimeError(f'Traceback ...\ncomponents.DataError: {error} [x]\n...')
  assert sources.find_data_error(text) is None
  try:
    try:
      raise error
    except DataError as inner:
      raise RuntimeError('pipeline failed') from inner
  except RuntimeError as outer:
    assert sources.find_data_error(outer) == error.message
    loop = ValueError('no data error here')
    loop.__context__ = loop
    assert sources.find_data_error(loop) is None


def test_converted_images_are_counted_and_logged(tree_data, caplog):
  """Grayscale, RGBA and palette images become RGB, with one line per split."""
  caplog.set_level(logging.WARNING, logger='components.ingest.sources')
  source = Source('image_dir', tree_data.root)
  sizes = {split: len(read(source, split)) for split in sources.SPLITS}
  lines = {r.getMessage().split(':')[0]: r.getMessage() for r in caplog.records
           if ' converted ' in r.getMessage()}
  assert set(lines) <= {'train', 'validation'}  # test holds only RGB images
  total = 0
  for split, line in lines.items():
    found = re.match(rf'{split}: converted (\d+) of {sizes[split]} images to '
                     r'RGB( \(alpha dropped\))?: (.*)\.$', line)
    assert found, line
    total += int(found.group(1))
    for kind in found.group(3).split('; '):
      name, count, example = re.match(r'(\w+) (\d+), e\.g\. (.*)$', kind).groups()
      assert name in ('RGBA', 'grayscale', 'palette') and int(count) >= 1
      assert example.startswith(tree_data.root) and os.path.exists(example)
  assert total == 9  # 3 classes x (RGBA, L, P) in train/
  assert all(name in ' '.join(lines.values())
             for name in ('RGBA', 'grayscale', 'palette'))


def test_sixteen_bit_images_are_rejected(make_tree):
  root = make_tree(train=2, test=1)
  path = os.path.join(root, 'test', 'deer', '0000.png')
  Image.fromarray(np.full((32, 32), 50000, np.uint16)).save(path)
  assert read_error(Source('image_dir', root), 'test') == (
      f'{path} has 16-bit or floating-point pixels (mode I;16): save it as '
      '8-bit RGB.')


def test_truncated_files_and_archives_name_what_to_do(make_tree, make_pickles,
                                                      tmp_path):
  root = make_tree(train=2, test=1)
  jpeg = os.path.join(root, 'train', 'cat' if os.path.isdir(
      os.path.join(root, 'train', 'cat')) else 'Cat', '0001.jpg')
  data = open(jpeg, 'rb').read()
  open(jpeg, 'wb').write(data[:len(data) // 2])
  assert read_error(Source('image_dir', root)) == (
      f'{jpeg} does not decode as an image (the file is truncated): remove it '
      'or fix it.')
  folder = make_pickles(per_class=1)
  archive = str(tmp_path / 'cifar-10-python.tar.gz')
  with tarfile.open(archive, 'w:gz') as tar:
    tar.add(folder, arcname='cifar-10-batches-py')
  data = open(archive, 'rb').read()
  open(archive, 'wb').write(data[:len(data) * 2 // 3])
  with pytest.raises(DataError, match='is not a readable .tar.gz archive'):
    sources.resolve_source(archive, str(tmp_path))  # found when resolved
  message = read_error(Source('pickle_archive', archive))  # or when read
  assert message == (f'{archive} is not a readable .tar.gz archive (unexpected '
                     'end of data): download it again.')


def test_an_empty_test_batch_is_an_empty_split(make_pickles):
  folder = make_pickles(per_class=1)
  rewrite(os.path.join(folder, 'test_batch'), {
      b'data': np.zeros((0, 3072), np.uint8), b'labels': []})
  assert read_error(Source('pickle_dir', folder), 'test') == (
      f'{folder}: test_batch hold(s) no images, so the test split would be empty; '
      'replace it with the file from '
      'https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz.')


def test_unreadable_paths_say_so(make_tree, tmp_path, monkeypatch):
  """As root, chmod 0 reads anyway: the OS's refusal is simulated."""
  root = make_tree(train=2, test=1)

  def refuse(*args, **kwargs):
    raise PermissionError(13, 'Permission denied')
  with monkeypatch.context() as patch:
    patch.setattr(sources.os, 'scandir', refuse)
    with pytest.raises(DataError) as caught:
      sources.resolve_source(root, str(tmp_path))
  assert caught.value.message.startswith(
      f'{root} cannot be read ([Errno 13] Permission denied)')
  archive = str(tmp_path / 'images.tgz')
  with tarfile.open(archive, 'w:gz') as tar:
    tar.add(root, arcname='cifar10')
  monkeypatch.setattr(sources.tarfile, 'open', refuse)
  with pytest.raises(DataError) as caught:
    sources.resolve_source(archive, str(tmp_path))
  assert caught.value.message.startswith(
      f'{archive} is not a readable .tar.gz archive ([Errno 13] Permission '
      'denied)')
