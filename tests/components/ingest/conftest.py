"""Small CIFAR-10 data sets, built per test session, for the ingest tests.

Used by test_sources.py, test_source_errors.py and test_executor.py through
the fixtures below (and `read`, one split as a list):
the official pickle format exactly as published (folder and .tar.gz) and a
tree of PNG and JPEG images (folder and .tar.gz).
"""

from __future__ import annotations

import os
import pickle
import tarfile
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from components.ingest import sources
from pipeline.config import CLASS_NAMES

BATCHES = tuple(f'data_batch_{i}' for i in range(1, 6)) + ('test_batch',)
FRACTION = 0.25  # validation share of the training records in `read`


@dataclass
class PickleData:
  folder: str  # .../cifar-10-batches-py
  archive: str  # .../cifar-10-python.tar.gz holding that folder
  batches: dict  # batch name -> the dict pickled in it


@dataclass
class TreeData:
  folder: str  # the folder that holds the tree one level down (cifar10/)
  root: str  # the tree itself: train/ and test/
  archive: str  # a .tgz of cifar10/train, cifar10/test
  labels: dict  # id (path inside the tree) -> label


def read(source: sources.Source, split: str, **kwargs) -> list:
  """All records of one split, with the tests' validation fraction and salt."""
  kwargs.setdefault('validation_fraction', FRACTION)
  kwargs.setdefault('salt', 'test-salt')
  return list(sources.read_split(source, split, **kwargs))


def write_pickles(folder: str, per_class: int = 4, seed: int = 0) -> dict:
  """The official layout: 5 training batches, test_batch, batches.meta."""
  rng = np.random.default_rng(seed)
  os.makedirs(folder, exist_ok=True)
  batches = {}
  for index, name in enumerate(BATCHES):
    labels = np.repeat(np.arange(10), per_class)
    rng.shuffle(labels)
    batches[name] = {
        b'batch_label': f'{name.replace("_", " ")} of 6'.encode(),
        b'labels': labels.tolist(),
        b'data': rng.integers(0, 256, (labels.size, 3072), dtype=np.uint8),
        b'filenames': [f'{name}_{i}.png'.encode() for i in range(labels.size)],
    }
    with open(os.path.join(folder, name), 'wb') as f:  # py2-era protocol 2,
      pickle.dump(batches[name], f, protocol=2 if index < 4 else 5)  # and 5
  meta = {b'label_names': [n.encode() for n in CLASS_NAMES],
          b'num_cases_per_batch': 10 * per_class, b'num_vis': 3072}
  with open(os.path.join(folder, 'batches.meta'), 'wb') as f:
    pickle.dump(meta, f, protocol=2)
  return batches


def tar_folder(archive: str, folder: str, arcname: str) -> str:
  with tarfile.open(archive, 'w:gz') as tar:
    tar.add(folder, arcname=arcname)
  return archive


def write_tree(root: str, train: int = 6, test: int = 2, seed: int = 1) -> dict:
  """train/<class>/NNNN.(png|jpg), test/...; 'cat' spelled 'Cat'; odd modes."""
  rng = np.random.default_rng(seed)
  labels = {}
  for split, count in (('train', train), ('test', test)):
    for label, name in enumerate(CLASS_NAMES):
      folder = os.path.join(root, split, 'Cat' if name == 'cat' else name)
      os.makedirs(folder, exist_ok=True)
      for i in range(count):
        pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        image = Image.fromarray(pixels, 'RGB')
        modes = {0: 'RGBA', 1: 'L', 2: 'P'}  # 1 is a JPEG
        if split == 'train' and label < 3 and i in modes:
          image = image.convert(modes[i])
        file_name = f'{i:04d}.' + ('jpg' if i % 2 else 'png')
        image.save(os.path.join(folder, file_name))
        labels[f'{split}/{os.path.basename(folder)}/{file_name}'] = label
  return labels


@pytest.fixture(scope='session')
def pickle_data(tmp_path_factory) -> PickleData:
  base = str(tmp_path_factory.mktemp('pickles'))
  folder = os.path.join(base, 'cifar-10-batches-py')
  batches = write_pickles(folder)
  archive = tar_folder(os.path.join(base, 'cifar-10-python.tar.gz'), folder,
                       'cifar-10-batches-py')
  return PickleData(folder, archive, batches)


@pytest.fixture(scope='session')
def tree_data(tmp_path_factory) -> TreeData:
  base = str(tmp_path_factory.mktemp('tree'))
  folder = os.path.join(base, 'images')
  root = os.path.join(folder, 'cifar10')
  labels = write_tree(root)
  archive = tar_folder(os.path.join(base, 'images.tgz'), root, 'cifar10')
  return TreeData(folder, root, archive, labels)


@pytest.fixture
def make_tree(tmp_path) -> Callable[..., str]:
  """A fresh tree to damage: make_tree(train=2, test=1) -> its root."""
  def make(**kwargs) -> str:
    root = str(tmp_path / 'tree')
    write_tree(root, **kwargs)
    return root
  return make


@pytest.fixture
def make_pickles(tmp_path) -> Callable[..., str]:
  """A fresh cifar-10-batches-py folder to damage -> its path."""
  def make(**kwargs) -> str:
    folder = str(tmp_path / 'cifar-10-batches-py')
    write_pickles(folder, **kwargs)
    return folder
  return make
