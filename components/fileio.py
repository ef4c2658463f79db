"""File access for local paths and object stores (gs://, and s3:// with tensorflow-io).

Called by the components' executors and the trainer loop. On Kubeflow the
artifact URIs are object-store URLs, which Python's `open` and `os` cannot
read; TensorFlow's gfile can. Without TensorFlow (the backend-neutral
benchmarks under JAX or PyTorch) local paths still work.
"""

from __future__ import annotations

import builtins
import os


def _gfile():
  try:
    import tensorflow as tf
  except ImportError:
    return None
  return tf.io.gfile


def _remote(path: str) -> bool:
  return '://' in str(path)


def open_file(path: str, mode: str = 'r'):
  gfile = _gfile()
  if gfile is None or not _remote(path):
    return builtins.open(path, mode)
  return gfile.GFile(path, mode)


def exists(path: str) -> bool:
  gfile = _gfile()
  if gfile is None or not _remote(path):
    return os.path.exists(path)
  return gfile.exists(path)


def makedirs(path: str) -> None:
  gfile = _gfile()
  if gfile is None or not _remote(path):
    os.makedirs(path, exist_ok=True)
  else:
    gfile.makedirs(path)


def join(*parts: str) -> str:
  return os.path.join(*parts)
