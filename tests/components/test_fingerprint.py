"""Code fingerprints follow the import graph (components/fingerprint.py).

The closure is checked against what the modules really import, and an edit
of a module imported only indirectly changes the fingerprint of the modules
that reach it and of no other. The whole-run version of this (the edited
node and its downstream re-run, the rest cached) is in
tests/pipeline/test_local_run.py.
"""

from __future__ import annotations

import shutil

import pytest

from components import fingerprint


def test_closure_follows_direct_indirect_and_function_level_imports():
  selector = fingerprint.closure('components.selector')
  # selector -> evaluation_metrics (module level); -> model_check -> ...
  assert {'components.selector', 'components.evaluation_metrics',
          'components.push', 'components.fileio', 'components.model_check',
          'components.settings', 'components.fingerprint',
          'components'} <= set(selector)
  assert 'components.ingest.sources' not in selector
  trainer = fingerprint.closure('components.trainers.alexnet')
  # base.run_fn imports data, device and export inside the function.
  assert {'components.trainers.base', 'components.trainers.data',
          'components.trainers.device', 'components.trainers.export',
          'components.trainers.models', 'components.cifar10',
          'components.trainers'} <= set(trainer)
  assert 'components.trainers.vgg16' not in trainer
  # A parent package's lazy import in a function is not followed.
  assert 'components.image_validation' not in selector


def test_ingest_closure_holds_the_class_order():
  assert 'components.cifar10' in fingerprint.closure('components.ingest.component')


@pytest.fixture
def copied_tree(tmp_path, monkeypatch):
  shutil.copytree(fingerprint._ROOT / 'components', tmp_path / 'components',
                  ignore=shutil.ignore_patterns('__pycache__'))
  monkeypatch.setattr(fingerprint, '_ROOT', tmp_path)
  return tmp_path


def test_an_indirect_edit_changes_exactly_the_modules_that_reach_it(copied_tree):
  roots = ('components.selector', 'components.data_gate',
           'components.trainers.alexnet', 'components.ingest.component',
           'components.transform')
  before = {r: fingerprint.code_fingerprint(r) for r in roots}
  metrics = copied_tree / 'components' / 'evaluation_metrics.py'
  metrics.write_text(metrics.read_text() + '\n# edited\n')
  after = {r: fingerprint.code_fingerprint(r) for r in roots}
  assert [r for r in roots if before[r] != after[r]] == ['components.selector']


def test_a_missing_module_is_an_error():
  with pytest.raises(ImportError, match='components.nope'):
    fingerprint.closure('components.nope')
