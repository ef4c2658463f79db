"""s3:// through tensorflow-io against a local S3 API (components/fileio.py,
push.py, ingest/sources.py): what an S3 or MinIO pipeline root runs on.

Run by pytest. moto's S3 server on 127.0.0.1 (tests/conftest.py) stands in
for MinIO. The S3 work runs in a child process that ends with `os._exit`, as
the pods do (pipeline/pod.py): tensorflow-io's S3 client aborts at exit.
"""

import json
import os
import subprocess
import sys
import tarfile
import textwrap

from tests.conftest import s3_env, save_fake_model, write_image_tree

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CHILD = textwrap.dedent('''
    import json, os, sys
    sys.path.insert(0, {root!r})
    from components import fileio, push, selector
    from components.ingest import sources
    result = {{}}
    try:
      for _ in range(2):
        result.setdefault('pushed', []).append(
            selector.push({model!r}, 's3://bucket/serving', 'cifar10'))
      model_dir = 's3://bucket/serving/cifar10'
      result['versions'] = push.versions(model_dir)
      result['same'] = push.same_model({model!r}, model_dir + '/2')
      result['listing'] = fileio.listdir(model_dir)
      fileio.copy_file({archive!r}, 's3://bucket/data/images.tgz')
      source = sources.resolve_source('s3://bucket/data/images.tgz', '/none')
      local = sources.Source('image_archive', {archive!r})
      result['source'] = [source.kind, source.path]
      result['same_records'] = all(
          list(sources.read_split(source, s, validation_fraction=0.25, salt='s'))
          == list(sources.read_split(local, s, validation_fraction=0.25, salt='s'))
          for s in ('train', 'validation', 'test'))
    except BaseException as e:
      result['error'] = repr(e)
    print('RESULT ' + json.dumps(result), flush=True)
    os._exit(0)
''')


def test_push_and_ingest_work_on_an_s3_endpoint(s3_endpoint, tmp_path):
  model = save_fake_model(str(tmp_path / 'model'), 'oracle')
  archive = str(tmp_path / 'images.tgz')
  with tarfile.open(archive, 'w:gz') as tar:
    tar.add(write_image_tree(str(tmp_path / 'tree'), 4, 2), arcname='cifar10')
  env = dict(os.environ, **s3_env(s3_endpoint))
  child = subprocess.run(
      [sys.executable, '-c', CHILD.format(root=ROOT, model=model,
                                          archive=archive)],
      env=env, capture_output=True, text=True, timeout=300, check=False)
  lines = [l for l in child.stdout.splitlines() if l.startswith('RESULT ')]
  assert child.returncode == 0 and lines, child.stderr[-3000:]
  result = json.loads(lines[-1][len('RESULT '):])
  assert 'error' not in result, result.get('error')
  assert result['pushed'] == ['s3://bucket/serving/cifar10/1',
                              's3://bucket/serving/cifar10/2']
  assert result['versions'] == [1, 2] and result['same']
  assert result['listing'] == ['.last_version', '1', '2']
  assert result['source'] == ['image_archive', 's3://bucket/data/images.tgz']
  assert result['same_records']
