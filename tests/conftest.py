"""Shared fixtures: small synthetic CIFAR-like images that tests turn into data sets.

Used by the tests of every package. Images are random but class-dependent
(each class has its own mean colour), so a model can learn them quickly.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np
import pytest

from pipeline import config as config_lib
from pipeline import overrides

CLASS_NAMES = ('airplane', 'automobile', 'bird', 'cat', 'deer',
               'dog', 'frog', 'horse', 'ship', 'truck')


def synthetic_images(n_per_class: int, seed: int = 0):
  """uint8 images [N, 32, 32, 3] and int labels; class k is tinted by k."""
  rng = np.random.default_rng(seed)
  images, labels = [], []
  for label in range(10):
    base = np.array([(label * 25) % 256, (label * 70) % 256, 255 - label * 25])
    noise = rng.integers(-60, 60, size=(n_per_class, 32, 32, 3))
    images.append(np.clip(base + noise, 0, 255).astype(np.uint8))
    labels += [label] * n_per_class
  return np.concatenate(images), np.array(labels)


def write_image_tree(root, n_train: int, n_test: int, seed: int = 0,
                     fmt: str = 'png') -> str:
  """Writes train/<class>/NNNN.<fmt> and test/<class>/NNNN.<fmt> under root."""
  from PIL import Image
  for split, n in (('train', n_train), ('test', n_test)):
    images, labels = synthetic_images(n, seed + (split == 'test'))
    counters = {}
    for image, label in zip(images, labels):
      folder = os.path.join(root, split, CLASS_NAMES[label])
      os.makedirs(folder, exist_ok=True)
      index = counters.get(label, 0)
      counters[label] = index + 1
      Image.fromarray(image).save(os.path.join(folder, f'{index:04d}.{fmt}'))
  return str(root)


@pytest.fixture
def image_tree(tmp_path):
  return write_image_tree(tmp_path / 'cifar', n_train=6, n_test=2)


def fixture_config(tmp, **settings) -> config_lib.PipelineConfig:
  config = config_lib.preset('quick')
  config.root = str(tmp / 'root')
  config.serving.directory = str(tmp / 'serving')
  config.evaluation.accuracy_threshold = 0.0
  config.data.validation_fraction = 0.2
  for trainer in config.models.values():
    trainer.batch_size = 16
  for key, value in settings.items():
    overrides.apply(config, f'{key}={value}')
  return config_lib.validate(config)


def run_pipeline(config, data_path):
  from components.ingest import sources
  from pipeline import local
  source = sources.resolve_source(data_path, config.data.cache_dir)
  return local.run(config, source, echo=print)


@pytest.fixture(scope='session')
def quick_run(tmp_path_factory):
  """One whole local run of the DAG on a small image tree, shared by the tests.

  Returns (tmp dir, data path, config, RunRecord). Tests that run the pipeline
  again on the same root add runs (and maybe versions) after this one.
  """
  tmp = tmp_path_factory.mktemp('e2e')
  data = write_image_tree(tmp / 'data', n_train=10, n_test=4)
  config = fixture_config(tmp)
  return tmp, data, config, run_pipeline(config, data)


def save_fake_model(path: str, kind: str) -> str:
  """A SavedModel whose serving_default answers each example's label ('oracle'),
  always class 0 ('zero'), or NaN probabilities ('nan')."""
  import tensorflow as tf

  class Model(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                                name='examples')])
    def serve(self, examples):
      labels = tf.io.parse_example(examples, {'label': tf.io.FixedLenFeature(
          [], tf.int64, default_value=0)})['label']
      if kind == 'nan':
        return {'probabilities': tf.fill([tf.size(labels), 10], float('nan'))}
      answer = labels if kind == 'oracle' else tf.zeros_like(labels)
      return {'probabilities': tf.one_hot(answer, 10)}
  model = Model()
  tf.saved_model.save(model, path, signatures={
      'serving_default': model.serve.get_concrete_function()})
  return path


def run_bounded(code: str, memory_mb: int = 400, timeout: float = 60,
                cwd: str | None = None) -> subprocess.CompletedProcess:
  """Runs `python -c code` from the project root with its address space
  limited to `memory_mb` (RLIMIT_AS) and a wall-clock `timeout`; the
  hostile-input tests assert it ends in time, within memory, with its message."""
  def limit():
    size = memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (size, size))
  env = dict(os.environ, OPENBLAS_NUM_THREADS='1', OMP_NUM_THREADS='1',
             PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  return subprocess.run([sys.executable, '-c', code], capture_output=True,
                        text=True, timeout=timeout, preexec_fn=limit, env=env,
                        cwd=cwd, check=False)


S3_BUCKET = 'bucket'


def s3_env(endpoint: str) -> dict:
  """The environment a pod gets for an S3 root (pipeline/object_store.py),
  plus the keys a secret would give it."""
  return {'S3_ENDPOINT': endpoint, 'S3_USE_HTTPS': '0', 'S3_VERIFY_SSL': '0',
          'AWS_REGION': 'us-east-1', 'AWS_ACCESS_KEY_ID': 'test',
          'AWS_SECRET_ACCESS_KEY': 'test', 'TF_CPP_MIN_LOG_LEVEL': '2'}


@pytest.fixture(scope='session')
def s3_endpoint():
  """URL of moto's S3 server on 127.0.0.1, holding an empty bucket S3_BUCKET.

  Tests give the URL to child processes (tensorflow-io's S3 client aborts at
  interpreter exit, so it never runs inside pytest itself).
  """
  pytest.importorskip('tensorflow_io')
  moto_server = pytest.importorskip('moto.server')
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
  server = moto_server.ThreadedMotoServer(ip_address='127.0.0.1', port=port)
  server.start()
  url = f'http://127.0.0.1:{port}'
  s3_client(url).create_bucket(Bucket=S3_BUCKET)
  yield url
  server.stop()


def s3_client(endpoint: str):
  import boto3
  return boto3.client('s3', endpoint_url=endpoint, region_name='us-east-1',
                      aws_access_key_id='test', aws_secret_access_key='test')
