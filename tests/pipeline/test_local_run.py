"""Whole local runs of the DAG on a small fixture (LocalDagRunner, SQLite MLMD).

One module-scoped run is shared by the checks: exactly one model pushed, its
serving signature classifies PNG and JPEG bytes, a second run comes from
cache, a changed trainer setting re-runs that trainer only.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest

from pipeline import config as config_lib
from tests.conftest import CLASS_NAMES, synthetic_images, write_image_tree

pytestmark = pytest.mark.e2e


def fixture_config(tmp, **overrides) -> config_lib.PipelineConfig:
  config = config_lib.preset('quick')
  config.root = str(tmp / 'root')
  config.serving.directory = str(tmp / 'serving')
  config.evaluation.accuracy_threshold = 0.0
  config.data.validation_fraction = 0.2
  for trainer in config.models.values():
    trainer.batch_size = 16
  for key, value in overrides.items():
    config_lib.apply_override(config, f'{key}={value}')
  return config_lib.validate(config)


def run_pipeline(config, data_path):
  from components.ingest import sources
  from pipeline import local
  source = sources.resolve_source(data_path, config.data.cache_dir)
  return local.run(config, source, echo=print)


@pytest.fixture(scope='module')
def first_run(tmp_path_factory):
  tmp = tmp_path_factory.mktemp('e2e')
  data = write_image_tree(tmp / 'data', n_train=10, n_test=4)
  config = fixture_config(tmp)
  return tmp, data, config, run_pipeline(config, data)


def _example(encoded: bytes) -> bytes:
  import tensorflow as tf
  return tf.train.Example(features=tf.train.Features(feature={
      'image': tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded]))
  })).SerializeToString()


def test_whole_dag_runs_and_pushes_exactly_one_model(first_run):
  tmp, _, config, record = first_run
  states = {n.node_id: n.state for n in record.nodes}
  assert set(states) >= {'Cifar10ExampleGen', 'StatisticsGen', 'ExampleValidator',
                         'DataGate', 'Transform', 'Trainer_alexnet',
                         'Trainer_vgg16', 'Evaluator_alexnet',
                         'Evaluator_vgg16', 'ModelSelector'}
  assert set(states.values()) == {'COMPLETE'}
  from pipeline import runs
  assert runs.split_counts(record) == {'test': 40, 'train': 80, 'validation': 20}
  decision = runs.decision(record)
  assert decision['chosen'] in ('alexnet', 'vgg16')
  versions = os.listdir(os.path.join(config.serving.directory, 'cifar10'))
  assert versions == ['1']
  assert decision['destination'].endswith(os.path.join('cifar10', '1'))


def test_served_model_classifies_png_and_jpeg(first_run):
  import tensorflow as tf
  from PIL import Image
  _, _, config, _ = first_run
  model = tf.saved_model.load(os.path.join(config.serving.directory, 'cifar10', '1'))
  serve = model.signatures['serving_default']
  images, _ = synthetic_images(1, seed=5)
  payloads = []
  for fmt in ('PNG', 'JPEG'):
    buffer = io.BytesIO()
    Image.fromarray(images[3]).save(buffer, format=fmt)
    payloads.append(_example(buffer.getvalue()))
  out = serve(examples=tf.constant(payloads))
  classes = [c.decode() for c in out['classes'].numpy()]
  assert all(c in CLASS_NAMES for c in classes)
  np.testing.assert_allclose(out['probabilities'].numpy().sum(axis=1), 1.0, atol=1e-4)
  with pytest.raises(Exception):
    serve(examples=tf.constant([_example(b'these bytes are no image')]))


def test_second_run_is_served_from_cache_and_a_changed_trainer_reruns(first_run):
  tmp, data, config, _ = first_run
  again = run_pipeline(config, data)
  assert {n.state for n in again.nodes} == {'CACHED'}
  changed = fixture_config(tmp, **{'alexnet.learning_rate': 0.01})
  third = run_pipeline(changed, data)
  states = {n.node_id: n.state for n in third.nodes}
  assert states['Trainer_alexnet'] == 'COMPLETE'
  assert states['Evaluator_alexnet'] == 'COMPLETE'
  assert states['Trainer_vgg16'] == 'CACHED'
  assert states['Transform'] == 'CACHED'
  assert states['Cifar10ExampleGen'] == 'CACHED'
