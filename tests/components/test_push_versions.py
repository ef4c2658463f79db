"""The serving folder stays usable: odd entries never block a push, names stay
inside it, a failed push leaves the served versions as they were.

Run by pytest; no TensorFlow (the "models" are plain folders and the push is
called without a check). Read-only folders and full disks are simulated by
making the copy fail with the error the system would raise, since these
tests may run as root.
"""

from __future__ import annotations

import errno
import os

import pytest

from components import fileio, push, selector

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def model(tmp_path) -> str:
  folder = tmp_path / 'model'
  (folder / 'variables').mkdir(parents=True)
  (folder / 'saved_model.pb').write_bytes(b'pb')
  (folder / 'variables' / 'variables.index').write_bytes(b'index')
  return str(folder)


def listing(folder: str) -> dict[str, list[str]]:
  return {name: fileio.files_under(os.path.join(folder, name))
          if os.path.isdir(os.path.join(folder, name)) else []
          for name in sorted(os.listdir(folder))}


def test_only_ascii_digit_folders_are_versions(tmp_path, model):
  served = tmp_path / 'cifar10'
  served.mkdir()
  for name in ('²', '٣', '１', 'v2', '-1', '+4', ' 5', '6 ', '1.0', '0x7',
               '99999999999999999999', '.staging-old', '3'):
    (served / name).mkdir()
  (served / '1').write_text('a plain file named 1')
  (served / '8').symlink_to('/nonexistent')
  assert push.versions(str(served)) == [3]
  assert push.next_version(str(served)) == 9  # above the file 1 and link 8
  with push.locked(str(served)):
    destination = push.push(model, str(served))
  assert destination == str(served / '9')
  assert push.versions(str(served)) == [3, 9]
  assert not (served / '.staging-old').exists()  # a killed push's leftovers


def test_last_version_cannot_hang_or_overflow_a_push(tmp_path, model):
  served = tmp_path / 'cifar10'
  served.mkdir()
  last = served / push.LAST_VERSION_FILE
  os.mkfifo(last)  # opened non-blocking: no hang
  assert push.next_version(str(served)) == 1
  os.remove(last)
  last.write_text('garbage ² 12 -3 1e9\n')
  assert push.next_version(str(served)) == 13
  last.write_text(str(2 ** 63 - 1))
  with pytest.raises(push.PushError, match='highest TF Serving reads'):
    push.next_version(str(served))
  os.remove(last)
  last.mkdir()  # a folder in its place is not read, and is replaced
  with push.locked(str(served)):
    push.push(model, str(served))
  assert last.read_text() == '1\n'


def test_a_fifo_lock_or_a_file_model_folder_ends_with_one_message(tmp_path,
                                                                  model):
  served = tmp_path / 'cifar10'
  served.mkdir()
  os.mkfifo(served / push.LOCK_FILE)
  with pytest.raises(push.PushError) as caught:
    selector.push(model, str(tmp_path), 'cifar10')
  assert caught.value.message.startswith(f'Cannot push to {served} (')
  assert 'the served versions are as they were' in caught.value.message
  (tmp_path / 'blocked').write_text('a file where the model folder goes')
  with pytest.raises(push.PushError, match='Cannot push to .*blocked'):
    selector.push(model, str(tmp_path), 'blocked')


@pytest.mark.parametrize('name', ['../escaped', '..', '.', '/abs', 'a/b', '',
                                  '.hidden', 'x\x00y', 'a\\b', '-x', 'cifar10/'])
def test_a_model_name_that_is_a_path_is_refused(tmp_path, model, name):
  serving = tmp_path / 'serving'
  serving.mkdir()
  with pytest.raises(push.PushError, match='is not a model name'):
    selector.push(model, str(serving), name)
  assert os.listdir(tmp_path) == ['model', 'serving']
  assert os.listdir(serving) == []


@pytest.mark.parametrize('code', [errno.ENOSPC, errno.EROFS, errno.EACCES,
                                  errno.EDQUOT])
def test_a_failing_disk_leaves_served_versions_as_they_were(tmp_path, model,
                                                            monkeypatch, code):
  served = str(tmp_path / 'cifar10')
  selector.push(model, str(tmp_path), 'cifar10')
  before = listing(served)
  real = fileio.copy_file
  copied = []

  def failing(source, target):
    if copied:  # the second file: the disk is full (or read-only) now
      raise OSError(code, os.strerror(code), target)
    copied.append(target)
    real(source, target)
  monkeypatch.setattr(fileio, 'copy_file', failing)
  with pytest.raises(push.PushError) as caught:
    selector.push(model, str(tmp_path), 'cifar10')
  assert caught.value.message.startswith(f'Cannot push to {served} (')
  assert os.strerror(code) in caught.value.message
  assert listing(served) == before  # no staging folder, no new version
