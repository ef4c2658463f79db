"""`tfx.v1` imported without the Vertex AI SDK, and its extensions still
usable (pipeline/tfx_imports.py). Each check runs in a fresh interpreter:
what is imported is the point."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(code: str) -> str:
  done = subprocess.run(
      [sys.executable, '-c', textwrap.dedent(code)], cwd=ROOT, text=True,
      capture_output=True, timeout=300,
      env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'})
  assert done.returncode == 0, done.stderr[-3000:]
  return done.stdout.strip().splitlines()[-1]


def test_the_pipeline_builds_without_the_vertex_sdk_and_extensions_still_load():
  out = _run("""
      import sys
      from pipeline.commands import prepare_imports
      prepare_imports()
      from tfx import v1 as tfx
      from pipeline import config, create, local
      from components.ingest.sources import Source
      cfg = config.preset('quick')
      cfg.root = '/tmp/unused-root'
      create.create_pipeline(cfg, source=Source('image_archive', '/x/y.tgz'),
                             **local.locations(cfg))
      before = 'google.cloud.aiplatform' in sys.modules
      from tfx.v1.extensions import google_cloud_big_query
      from tfx.extensions.google_cloud_ai_platform.trainer import component
      assert tfx.extensions.google_cloud_ai_platform.Trainer is component.Trainer
      assert sys.modules['tfx.v1'].extensions is sys.modules['tfx.v1.extensions']
      print(before, 'google.cloud.aiplatform' in sys.modules)
      """)
  assert out == 'False True'


def test_a_submodule_imported_first_still_imports_the_package_later():
  out = _run("""
      import sys
      from pipeline import tfx_imports
      assert tfx_imports.defer_extensions()
      import tfx.v1.extensions.google_cloud_big_query as bq
      from tfx import v1 as tfx
      print(tfx.extensions.google_cloud_big_query.BigQueryExampleGen is
            bq.BigQueryExampleGen, tfx.extensions.google_cloud_ai_platform.Pusher
            is not None)
      """)
  assert out == 'True True'


@pytest.mark.parametrize('first', ['import tfx.v1', 'import tfx.v1.extensions'])
def test_nothing_is_replaced_once_tfx_is_imported(first):
  out = _run(f"""
      {first}
      import sys
      from pipeline import tfx_imports
      print(tfx_imports.defer_extensions(), type(sys.modules['tfx.v1.extensions']))
      """)
  assert out == "False <class 'module'>"
