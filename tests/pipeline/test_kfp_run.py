"""The compiled spec, executed task by task as a KFP 2.x cluster would.

Run by `.ci/run` (marker `kfp`; 8.5 minutes on 2 cores, 14 under load). The
spec comes from `cifar10-tfx compile` (quick preset, tiny data, an s3:// root
on moto's S3 server on 127.0.0.1, which stands in for MinIO);
`tests/kfp_emulator` plays KFP 2.x's driver and launcher: it says in its docstring which of their
behaviours it reproduces (strict `runtimeValue.constant` parameters checked
against `parameterType`, input artifacts with the metadata each executor
wrote, output URIs under the run's pipeline root, `{{$}}` and the other
placeholders, the container's own command, args and env plus the secret's
keys, KFP's cache) and which it cannot (Argo's scheduling, the MLMD server,
the launcher's own object-store client, retries, GPU node pools).

The runs, in order (the tests share one S3 server and one metadata store):
1. every task executes; the model pushed to the bucket is read back and
   classifies images through `serving_default`;
2. compiled again from unchanged data: every task comes from KFP's cache
   except ModelSelector, which is never cached, runs and pushes nothing
   (its candidate is the served model);
3. a changed archive at the same URL: compiled again, ExampleGen misses the
   cache and ingests the new archive;
a minio:// root compiles to the same spec as the s3:// one on the same
endpoint, so run 1 covers it too. Each task's wall time is printed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import pathlib
import time

import pytest
import yaml

from pipeline import cli
from pipeline.kubeflow import IMAGE_ROOT
from tests import kfp_emulator
from tests.components.ingest.conftest import tar_folder, write_pickles
from tests.conftest import S3_BUCKET, s3_client

pytestmark = pytest.mark.kfp

IMAGE = 'registry.example.com/ml/cifar10-tfx:kfp-run'
ROOT = pathlib.Path(__file__).resolve().parents[2]  # stands in for the image's WORKDIR
ROOT_URL = f's3://{S3_BUCKET}/kfp-root'
DATA_KEY = 'data/cifar-10-python.tar.gz'
SECRETS = {'mlpipeline-minio-artifact': {'accesskey': 'test', 'secretkey': 'test'}}
TINY = ('data.train_per_class=12', 'data.test_per_class=3',
        'data.validation_fraction=0.25', 'evaluation.accuracy_threshold=0.0',
        'alexnet.batch_size=16', 'vgg16.batch_size=16',
        'alexnet.steps_per_epoch=2', 'vgg16.steps_per_epoch=2',
        'vgg16.weights=none', 'serving.check_examples=4')


@dataclasses.dataclass
class Cluster:
  endpoint: str
  tmp: str
  store: kfp_emulator.Metadata
  runs: dict = dataclasses.field(default_factory=dict)  # run name -> {task: TaskRun}
  specs: dict = dataclasses.field(default_factory=dict)  # name -> (spec, platform)


def upload_archive(cluster: Cluster, seed: int) -> str:
  """A cifar-10-python.tar.gz (3 test and 15 training images per class) at
  DATA_KEY; returns the local copy."""
  base = os.path.join(cluster.tmp, f'archive-{seed}')
  folder = os.path.join(base, 'cifar-10-batches-py')
  write_pickles(folder, per_class=3, seed=seed)
  archive = tar_folder(os.path.join(base, 'cifar-10-python.tar.gz'), folder,
                       'cifar-10-batches-py')
  s3_client(cluster.endpoint).upload_file(archive, S3_BUCKET, DATA_KEY)
  return archive


def compile_spec(cluster: Cluster, name: str, root: str = ROOT_URL):
  """`cifar10-tfx compile` in this process: (pipeline spec, platform spec)."""
  path = os.path.join(cluster.tmp, f'{name}.yaml')
  args = ['compile', '--preset', 'quick', '--image', IMAGE, '--pipeline-root',
          root, '--data', f's3://{S3_BUCKET}/{DATA_KEY}', '--output', path,
          '--set', f'kubeflow.s3_endpoint={cluster.endpoint}']
  for setting in TINY:
    args += ['--set', setting]
  with contextlib.redirect_stdout(io.StringIO()):
    assert cli.main(args) == 0
  with open(path) as f:
    spec, platform = yaml.safe_load_all(f)
  cluster.specs[name] = spec, platform
  return spec, platform


def run(cluster: Cluster, name: str, spec, platform, **kwargs):
  """One emulated run, with the pipeline root that `deploy` sends."""
  lines = []
  start = time.time()
  runs = kfp_emulator.run(
      spec, platform, store=cluster.store, pipeline_root=spec['defaultPipelineRoot'],
      secrets=SECRETS, workdir=str(ROOT), image_root=IMAGE_ROOT,
      local_root=os.path.join(cluster.tmp, 'pod'), echo=lines.append, **kwargs)
  lines.append(f'  {"total":<20} {"":<9} {time.time() - start:6.1f} s')
  cluster.runs[name] = {r.name: r for r in runs}
  return cluster.runs[name], '\n'.join([f'{name} run:'] + lines)


@pytest.fixture(scope='module')
def cluster(s3_endpoint, tmp_path_factory):
  """The S3 server, the compiling machine's S3 settings (it reads the data's
  version) and an empty working folder, the compiler's current directory."""
  tmp = tmp_path_factory.mktemp('kfp')
  os.makedirs(tmp / 'pod')
  os.makedirs(tmp / 'cwd')
  with pytest.MonkeyPatch.context() as patch:
    for key, value in (('AWS_ENDPOINT_URL_S3', s3_endpoint),
                       ('AWS_ACCESS_KEY_ID', 'test'), ('AWS_SECRET_ACCESS_KEY', 'test'),
                       ('AWS_DEFAULT_REGION', 'us-east-1')):
      patch.setenv(key, value)
    patch.chdir(tmp / 'cwd')
    yield Cluster(s3_endpoint, str(tmp), kfp_emulator.Metadata())


def served_versions(cluster: Cluster) -> list[str]:
  listing = s3_client(cluster.endpoint).list_objects_v2(
      Bucket=S3_BUCKET, Prefix='kfp-root/serving_model/cifar10/', Delimiter='/')
  return sorted(p['Prefix'].split('/')[-2] for p in listing.get('CommonPrefixes', []))


def download(cluster: Cluster, prefix: str, target: str) -> str:
  client = s3_client(cluster.endpoint)
  for page in client.get_paginator('list_objects_v2').paginate(
      Bucket=S3_BUCKET, Prefix=prefix):
    for item in page.get('Contents', []):
      local = os.path.join(target, os.path.relpath(item['Key'], prefix))
      os.makedirs(os.path.dirname(local), exist_ok=True)
      client.download_file(S3_BUCKET, item['Key'], local)
  return target


def test_every_task_runs_and_the_pushed_model_classifies(cluster, capsys):
  import numpy as np
  import tensorflow as tf
  from components.ingest import executor, sources
  archive = upload_archive(cluster, seed=0)
  spec, platform = compile_spec(cluster, 'first')
  assert spec['schemaVersion'] == '2.1.0'
  assert os.listdir('.') == []  # compiling left no ./pipeline_output
  tasks, table = run(cluster, 'first', spec, platform)
  with capsys.disabled():
    print('\n' + table)
  assert len(tasks) == 12 and {t.state for t in tasks.values()} == {'COMPLETE'}
  examples = tasks['Cifar10ExampleGen'].outputs['examples']
  assert examples.uri.startswith(f'{ROOT_URL}/cifar10-tfx/')
  assert examples.metadata['split_names'] == '["train", "validation", "test"]'
  pushed = tasks['ModelSelector'].outputs['pushed_model'].metadata
  assert pushed['pushed'] == 1.0, pushed.get('decision')
  assert served_versions(cluster) == ['1']
  model_dir = download(cluster, 'kfp-root/serving_model/cifar10/1/',
                       os.path.join(cluster.tmp, 'served'))
  images = list(sources.read_split(
      sources.Source('pickle_archive', archive), 'test', validation_fraction=0.25,
      salt='any', test_per_class=1))
  serve = tf.saved_model.load(model_dir).signatures['serving_default']
  answer = serve(examples=tf.constant(
      [executor.to_example(i, label, png) for i, label, png in images]))
  probabilities = answer['probabilities'].numpy()
  assert probabilities.shape == (10, 10)
  assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-3)
  assert set(answer['class_ids'].numpy()) <= set(range(10))


def test_a_second_run_is_cached_and_does_not_push(cluster, capsys):
  if 'first' not in cluster.runs:
    pytest.skip('the first run did not finish')
  spec, platform = compile_spec(cluster, 'second')
  assert spec == cluster.specs['first'][0]  # same data, same spec
  tasks, table = run(cluster, 'second', spec, platform)
  with capsys.disabled():
    print('\n' + table)
  states = {name: t.state for name, t in tasks.items()}
  assert states.pop('ModelSelector') == 'COMPLETE'
  assert set(states.values()) == {'CACHED'}
  pushed = tasks['ModelSelector'].outputs['pushed_model'].metadata
  assert pushed['pushed'] == 0.0 and 'nothing new' in pushed['decision']
  assert served_versions(cluster) == ['1']


def test_a_changed_archive_at_the_same_url_is_ingested_again(cluster, capsys):
  if 'first' not in cluster.runs:
    pytest.skip('the first run did not finish')
  upload_archive(cluster, seed=1)
  spec, platform = compile_spec(cluster, 'changed')
  parameters = lambda s: s['root']['dag']['tasks']['Cifar10ExampleGen']['inputs']
  assert parameters(spec) != parameters(cluster.specs['first'][0])
  tasks, table = run(cluster, 'changed', spec, platform, until='Cifar10ExampleGen')
  with capsys.disabled():
    print('\n' + table)
  ingest = tasks['Cifar10ExampleGen']
  assert ingest.state == 'COMPLETE'
  before = cluster.runs['first']['Cifar10ExampleGen'].outputs['examples']
  assert ingest.outputs['examples'].uri != before.uri
  assert ingest.outputs['examples'].id != before.id  # downstream keys change


def test_a_minio_root_compiles_to_the_spec_run_above(cluster):
  if 'changed' not in cluster.specs:
    pytest.skip('the changed archive was not compiled')
  minio = compile_spec(cluster, 'minio', root=f'minio://{S3_BUCKET}/kfp-root')
  assert minio == cluster.specs['changed']  # same data, endpoint and secret
  assert minio[0]['defaultPipelineRoot'] == ROOT_URL and minio[1]
