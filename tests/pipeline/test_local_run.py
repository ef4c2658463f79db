"""Whole local runs of the DAG on a small fixture (LocalDagRunner, SQLite MLMD).

One module-scoped run is shared by the checks: exactly one model pushed, its
serving signature classifies PNG and JPEG bytes and answers bytes that are not
an image (or a truncated PNG, or nothing) with an error, a second run comes
from cache, a changed trainer setting re-runs that trainer only and the
selector measures the served model as TFMA measured it.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest

from tests.conftest import (CLASS_NAMES, fixture_config, run_pipeline,
                            synthetic_images)

pytestmark = pytest.mark.e2e


def _example(encoded: bytes) -> bytes:
  import tensorflow as tf
  return tf.train.Example(features=tf.train.Features(feature={
      'image': tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded]))
  })).SerializeToString()


def test_whole_dag_runs_and_pushes_exactly_one_model(quick_run):
  tmp, _, config, record = quick_run
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
  model_dir = os.path.join(config.serving.directory, 'cifar10')
  assert [v for v in os.listdir(model_dir) if not v.startswith('.')] == ['1']
  assert decision['destination'].endswith(os.path.join('cifar10', '1'))


def test_served_model_classifies_png_and_jpeg(quick_run):
  import tensorflow as tf
  from PIL import Image
  _, _, config, _ = quick_run
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
  buffer = io.BytesIO()
  Image.fromarray(images[4]).save(buffer, format='PNG')
  for not_an_image in (b'these bytes are no image', b'',
                       buffer.getvalue()[:len(buffer.getvalue()) // 2]):
    with pytest.raises(tf.errors.InvalidArgumentError):  # an error, no answer
      serve(examples=tf.constant([payloads[0], _example(not_an_image)]))


def test_second_run_is_served_from_cache_and_a_changed_trainer_reruns(quick_run):
  tmp, data, config, _ = quick_run
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
  # The served version 1 was measured by the selector on the same test split,
  # as TFMA measured the candidate it was when it was pushed.
  from pipeline import runs
  first, now = runs.decision(quick_run[3]), runs.decision(third)
  pushed = next(c for c in first['candidates'] if c['name'] == first['chosen'])
  assert now['baseline']['version'] == 1
  assert now['baseline']['accuracy'] == pytest.approx(pushed['accuracy'], abs=1e-6)
  versions = os.listdir(os.path.join(config.serving.directory, 'cifar10'))
  assert ('2' in versions) == bool(now['chosen'])


def test_models_record_where_their_weights_came_from(quick_run):
  import json
  _, _, _, record = quick_run
  for name, pretrained_possible, optimizer in (('alexnet', False, 'AdamW'),
                                              ('vgg16', True, 'SGD')):
    model = record.node(f'Trainer_{name}').outputs['model'][0]
    path = os.path.join(model.uri, 'Format-Serving', 'assets.extra',
                        'model_info.json')
    with open(path) as f:
      info = json.load(f)
    assert info['model_name'] == name
    if not info['pretrained']:
      assert info['weights_origin'].startswith('random')
    assert pretrained_possible or not info['pretrained']
    assert info['epochs_run'] == 1 and info['params'] > 1_000_000
    assert info['optimizer'] == optimizer  # offsets at 1x: Keras's own


def test_an_edit_of_an_indirectly_imported_module_reruns_only_its_node(
    quick_run, tmp_path, monkeypatch):
  """The selector imports the TFMA metrics reader (evaluation_metrics.py)
  only through its own module: an edit there re-runs the selector (it has
  no downstream) and nothing else. The edit is made in a copy of the
  package that the fingerprints read, so the checkout is never touched."""
  import shutil

  from components import fingerprint
  _, data, config, _ = quick_run
  shutil.copytree(fingerprint._ROOT / 'components', tmp_path / 'components',
                  ignore=shutil.ignore_patterns('__pycache__'))
  monkeypatch.setattr(fingerprint, '_ROOT', tmp_path)
  metrics = tmp_path / 'components' / 'evaluation_metrics.py'
  metrics.write_text(metrics.read_text() + '\n# an edit\n')
  states = {n.node_id: n.state for n in run_pipeline(config, data).nodes}
  assert states.pop('ModelSelector') == 'COMPLETE'
  assert set(states.values()) == {'CACHED'}, states
