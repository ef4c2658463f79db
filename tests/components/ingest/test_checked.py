"""An archive that passed the check of `--data` is not listed again while it
is unchanged (components/ingest/checked.py); any change checks it again."""

from __future__ import annotations

import json
import os
import shutil
import threading

import pytest

from components.ingest import checked, limits as limits_lib, sources
from components.ingest.config import Limits


@pytest.fixture
def listings(monkeypatch) -> list:
  """The archives `sources` lists, in order."""
  seen = []
  members = limits_lib.members

  def counted(tar, where, limits):
    seen.append(where)
    return members(tar, where, limits)
  monkeypatch.setattr(limits_lib, 'members', counted)
  return seen


@pytest.fixture
def archive(tree_data, tmp_path) -> str:
  return shutil.copy(tree_data.archive, str(tmp_path / 'images.tgz'))


def test_an_unchanged_archive_is_listed_once(archive, tmp_path, listings):
  cache = str(tmp_path / 'cache')
  first = sources.resolve_source(archive, cache)
  again = sources.resolve_source(archive, cache)
  assert first == again == sources.Source('image_archive', archive)
  assert listings == [archive]
  assert os.path.isfile(os.path.join(cache, checked.MEMO_FILE))


def test_a_rewritten_archive_is_checked_again_even_with_its_old_times(
    archive, tmp_path, listings):
  cache = str(tmp_path / 'cache')
  sources.resolve_source(archive, cache)
  before = os.stat(archive)
  size = before.st_size
  with open(archive, 'r+b') as f:  # same size, garbage from the middle on
    f.seek(size // 2)
    f.write(b'\0' * (size - size // 2))
  os.utime(archive, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime put back
  # What the zeros do depends on where the half falls in the gzip stream (the
  # archive's bytes hold its write time): the listing ends early, or a header
  # or a deflate block is garbage. Either way the archive is refused.
  with pytest.raises(sources.DataError,
                     match='lacks the class folder|is not a readable .tar.gz'):
    sources.resolve_source(archive, cache)
  assert listings == [archive, archive]


def test_other_limits_check_again(archive, tmp_path, listings):
  cache = str(tmp_path / 'cache')
  sources.resolve_source(archive, cache)
  with pytest.raises(sources.DataError, match='max_archive_bytes'):
    sources.resolve_source(archive, cache, Limits(archive_bytes=10_000))
  assert listings == [archive, archive]


def test_an_edit_of_the_ingest_code_checks_again(archive, tmp_path, listings,
                                                 monkeypatch):
  cache = str(tmp_path / 'cache')
  sources.resolve_source(archive, cache)
  monkeypatch.setattr(checked, 'code_fingerprint', lambda *roots: 'edited')
  sources.resolve_source(archive, cache)
  assert listings == [archive, archive]


@pytest.mark.parametrize('memo', [
    b'{not json', b'[1, 2]', b'"x"' + b' ' * checked.MAX_BYTES,
    json.dumps({'0' * 64: 'image_dir'}).encode()])
def test_a_damaged_or_foreign_memo_is_ignored(archive, tmp_path, listings, memo):
  cache = tmp_path / 'cache'
  cache.mkdir()
  (cache / checked.MEMO_FILE).write_bytes(memo)
  assert sources.resolve_source(archive, str(cache)).kind == 'image_archive'
  assert listings == [archive]


def test_a_forged_entry_cannot_name_a_kind_the_archive_is_not(
    archive, tmp_path, listings):
  cache = tmp_path / 'cache'
  cache.mkdir()
  forged = {checked.key(archive, Limits()): 'image_dir'}
  (cache / checked.MEMO_FILE).write_text(json.dumps(forged))
  assert sources.resolve_source(archive, str(cache)).kind == 'image_archive'
  assert listings == [archive]


def test_a_memo_that_is_a_fifo_is_not_waited_on(archive, tmp_path, listings):
  cache = tmp_path / 'cache'
  cache.mkdir()
  os.mkfifo(cache / checked.MEMO_FILE)  # open() for reading would block
  found = []
  worker = threading.Thread(
      target=lambda: found.append(sources.resolve_source(archive, str(cache))),
      daemon=True)
  worker.start()
  worker.join(60)
  assert not worker.is_alive(), 'resolve_source blocked on the memo'
  assert found[0].kind == 'image_archive' and listings == [archive]


def test_an_unwritable_cache_costs_only_the_speed_up(archive, tmp_path, listings):
  cache = tmp_path / 'cache'
  cache.write_text('a file where the folder should be')
  for _ in range(2):
    assert sources.resolve_source(archive, str(cache)).kind == 'image_archive'
  assert listings == [archive, archive]


def test_the_memo_keeps_the_latest_entries(tmp_path):
  cache = str(tmp_path)
  for i in range(checked.MAX_ENTRIES + 5):
    checked.remember(cache, f'key{i}', 'image_archive')
  kept = json.loads((tmp_path / checked.MEMO_FILE).read_text())
  assert list(kept) == [f'key{i}' for i in range(5, checked.MAX_ENTRIES + 5)]
  assert [p.name for p in tmp_path.iterdir()] == [checked.MEMO_FILE]
