"""Hostile pickled batches: no input runs code, imports a module or allocates
without bound.

Run by pytest; the batches come from conftest.py. No TensorFlow here. Each
batch names a callable a CIFAR-10 batch never holds, or calls an allowed one
with arguments that would allocate terabytes; it must end in a DataError
naming the file, with `sys.modules` unchanged (nothing was imported) and no
marker file written.
"""

from __future__ import annotations

import os
import pickle
import sys

import numpy as np
import pytest

from components.ingest.sources import DataError, Source
from tests.components.ingest.conftest import read
from tests.conftest import run_bounded

pytestmark = pytest.mark.timeout(60)


def global_call(module: str, name: str, *args: bytes) -> bytes:
  """A protocol-2 pickle calling module.name(*args) (args: pickled bytes)."""
  return (b'\x80\x02c' + module.encode() + b'\n' + name.encode() + b'\n(' +
          b''.join(args) + b'tR.')


def text(value: str) -> bytes:
  return b'X' + len(value.encode()).to_bytes(4, 'little') + value.encode()


def integer(value: int) -> bytes:
  return b'L' + str(value).encode() + b'L\n'


NOT_ALLOWED = [
    ('numpy.f2py.__main__', 'main'),  # importing it runs f2py's command line
    ('numpy.f2py', 'run_main'), ('numpy', 'load'), ('numpy', 'fromfile'),
    ('numpy.testing', 'assert_'), ('numpy.ctypeslib', 'load_library'),
    ('numpy.lib.format', 'read_array'), ('numpy.core.multiarray', 'ndarray'),
    ('numpy.', 'ndarray'), ('numpy.core.multiarray ', '_reconstruct'),
    ('os', 'system'), ('posix', 'system'), ('subprocess', 'Popen'),
    ('builtins', 'eval'), ('builtins', 'exec'), ('builtins', 'getattr'),
    ('__builtin__', 'open'), ('_codecs', 'decode'), ('copyreg', '_reconstructor'),
    ('pickle', 'loads'), ('this', 'd'), ('antigravity', 'geohash'),
]


def test_only_exact_pairs_unpickle_and_nothing_is_imported(make_pickles):
  folder = make_pickles(per_class=1)
  source = Source('pickle_dir', folder)
  read(source, 'train')  # warm: whatever reading imports is imported now
  batch = os.path.join(folder, 'data_batch_1')
  marker = os.path.join(folder, 'owned')
  before = set(sys.modules)
  for module, name in NOT_ALLOWED:
    with open(batch, 'wb') as f:
      f.write(global_call(module, name, text(f'touch {marker}')))
    with pytest.raises(DataError) as caught:
      read(source, 'train')
    assert caught.value.message.startswith(f'{batch} is not a CIFAR-10 batch '
                                           '(it does not unpickle')
    assert f'{module}.{name} is not allowed' in caught.value.message
  assert set(sys.modules) == before
  assert not os.path.exists(marker)
  assert 'numpy.f2py.__main__' not in sys.modules


@pytest.mark.parametrize('payload, words', [
    (global_call('__builtin__', 'bytes', integer(10 ** 12)),
     'bytes() is allowed without arguments only'),
    (global_call('numpy', 'ndarray', b'(' + integer(10 ** 6) * 2 + b't'),
     'not callable'),
    (b'\x80\x02cnumpy\nndarray\n(' + integer(10 ** 12) + b'tR.',
     'not callable'),
    (global_call('numpy.core.multiarray', '_reconstruct',
                 b'cnumpy\nndarray\n', b'(' + integer(10 ** 12) + b't',
                 b'U\x01b'), 'other arguments than a pickled array'),
    (global_call('_codecs', 'encode', text('x'), text('utf-16')),
     'latin1 text only'),
])
def test_allowed_callables_refuse_unbounded_arguments(make_pickles, payload,
                                                      words):
  folder = make_pickles(per_class=1)
  batch = os.path.join(folder, 'data_batch_3')
  with open(batch, 'wb') as f:
    f.write(payload)
  with pytest.raises(DataError) as caught:
    read(Source('pickle_dir', folder), 'train')
  assert words in caught.value.message and batch in caught.value.message


def test_numpy_1_and_2_pickles_of_arrays_still_read(make_pickles):
  folder = make_pickles(per_class=1)
  batch = os.path.join(folder, 'data_batch_1')
  with open(batch, 'rb') as f:
    original = pickle.load(f, encoding='bytes')
  for protocol in (2, 4, 5):
    with open(batch, 'wb') as f:
      pickle.dump(original, f, protocol=protocol)
    assert len(read(Source('pickle_dir', folder), 'train')) > 0
  data = pickle.dumps(original, protocol=5)
  for module in (b'numpy.core.multiarray', b'numpy.core.numeric'):
    data = data.replace(bytes([len(module)]) + module, bytes([len(module) + 1])
                        + module.replace(b'.core', b'._core'))
  assert b'numpy._core' in data
  with open(batch, 'wb') as f:  # as numpy 2 writes it
    f.write(data)
  assert len(read(Source('pickle_dir', folder), 'train')) > 0
  original[b'labels'] = np.asarray(original[b'labels'], np.int64)
  with open(batch, 'wb') as f:  # labels as an array of numpy scalars
    pickle.dump(original, f, protocol=2)
  assert len(read(Source('pickle_dir', folder), 'train')) > 0


def test_a_memory_bomb_batch_stays_within_memory(make_pickles):
  folder = make_pickles(per_class=1)
  batch = os.path.join(folder, 'data_batch_1')
  with open(batch, 'wb') as f:  # bytes(3 GB): a plain unpickler allocates it
    f.write(global_call('__builtin__', 'bytes', integer(3 * 10 ** 9)))
  done = run_bounded(
      'from components.ingest import sources\n'
      'try:\n'
      f'  list(sources.read_split(sources.Source("pickle_dir", {folder!r}), '
      '"train", validation_fraction=0.1, salt=""))\n'
      'except sources.DataError as e:\n'
      '  print(e.message)\n', memory_mb=400, timeout=60)
  assert done.returncode == 0, done.stderr
  assert done.stdout.startswith(f'{batch} is not a CIFAR-10 batch')
