"""Fingerprints of the project's own source, for TFX's cache.

Called by `pipeline/create.py`. Components run as dotted import paths of
installed code, and TFX's cache does not see a change to that code; a hash of
the relevant files in each component's configuration makes it see one.
"""

from __future__ import annotations

import hashlib
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def source_fingerprint(*relative_paths: str) -> str:
  """sha256 (16 hex digits) over the named files and the .py files of folders."""
  digest = hashlib.sha256()
  for relative in relative_paths:
    path = ROOT / relative
    files = sorted(path.rglob('*.py')) if path.is_dir() else [path]
    for file in files:
      digest.update(str(file.relative_to(ROOT)).encode())
      digest.update(file.read_bytes())
  return digest.hexdigest()[:16]
