"""Tests of the Cifar10ExampleGen executor and component (Beam, TFX).

Run by pytest; the data sets come from conftest.py. Importing TFX costs ~15 s
once per session; each Executor.Do runs a small DirectRunner pipeline.
"""

from __future__ import annotations

import dataclasses
import glob
import os

import pytest
import tensorflow as tf
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components.ingest import component
from components.ingest import executor
from components.ingest import sources
from components.fingerprint import closure, code_fingerprint
from components.ingest.config import DataConfig, IngestSettings

DATA = DataConfig(validation_fraction=0.25, split_salt='exec-salt')


def exec_properties(source: sources.Source, data: DataConfig) -> dict:
  """What TFX hands the executor: the component's parameters (protos as JSON)."""
  gen = component.Cifar10ExampleGen(source, data)
  return dict(gen.exec_properties)


def run(source: sources.Source, data: DataConfig, tmp_path) -> dict:
  examples = standard_artifacts.Examples()
  examples.uri = str(tmp_path / 'examples')
  executor.Executor().Do({}, {'examples': [examples]},
                         exec_properties(source, data))
  assert artifact_utils.decode_split_names(examples.split_names) == [
      'train', 'validation', 'test']
  out = {}
  for split in sources.SPLITS:
    files = glob.glob(os.path.join(examples.uri, f'Split-{split}', '*.gz'))
    assert files, split
    out[split] = [tf.train.Example.FromString(record.numpy()) for record in
                  tf.data.TFRecordDataset(files, compression_type='GZIP')]
  return out


def test_component_carries_splits_and_settings(tree_data):
  source = sources.Source('image_archive', tree_data.archive)
  gen = component.Cifar10ExampleGen(source, DATA)
  assert isinstance(gen.executor_spec.executor_class(), executor.Executor)
  props = gen.exec_properties
  assert props['input_base'] == os.path.dirname(tree_data.archive)
  input_config = proto_utils.json_to_proto(props['input_config'],
                                           example_gen_pb2.Input())
  assert [(s.name, s.pattern) for s in input_config.splits] == [
      (s, 'images.tgz') for s in ('train', 'validation', 'test')]
  assert props['output_config'] == '{}'
  assert props['output_file_format'] == example_gen_pb2.FORMAT_TFRECORDS_GZIP
  settings = executor.read_settings(props)
  assert settings == IngestSettings(
      kind='image_archive', path=tree_data.archive,
      data=dataclasses.replace(DATA, source='', cache_dir=''),
      code_fingerprint=code_fingerprint('components.ingest.component'))
  # The fingerprint covers every module ingestion imports, e.g. the class order.
  assert 'components.cifar10' in closure('components.ingest.component')


def test_how_the_user_spelled_the_source_does_not_change_the_settings(tree_data):
  """`--data ../x.tgz` and `--data /abs/x.tgz` resolve to one source: the
  ExampleGen's parameters (its cache key) are the same."""
  source = sources.Source('image_archive', tree_data.archive)
  spelled = [dataclasses.replace(DATA, source=spelling, cache_dir=cache)
             for spelling, cache in ((tree_data.archive, '~/.keras/datasets'),
                                     (os.path.relpath(tree_data.archive), '/tmp'))]
  props = [component.Cifar10ExampleGen(source, d).exec_properties for d in spelled]
  assert props[0] == props[1]


def test_do_writes_three_splits_of_examples(tree_data, tmp_path):
  source = sources.Source('image_dir', tree_data.root)
  out = run(source, DataConfig(validation_fraction=0.25, split_salt='exec-salt',
                               train_per_class=4), tmp_path)
  assert {s: len(v) for s, v in out.items()} == {
      'train': 30, 'validation': 10, 'test': 20}
  expected = {s: {r[0]: r for r in sources.read_split(
      source, s, validation_fraction=0.25, salt='exec-salt', train_per_class=4)}
              for s in sources.SPLITS}
  for split, examples in out.items():
    for example in examples:
      feature = example.features.feature
      assert sorted(feature) == ['id', 'image', 'label']
      assert feature['id'].WhichOneof('kind') == 'bytes_list'
      assert feature['image'].WhichOneof('kind') == 'bytes_list'
      assert feature['label'].WhichOneof('kind') == 'int64_list'
      image_id = feature['id'].bytes_list.value[0].decode()
      _, label, png = expected[split][image_id]
      assert feature['label'].int64_list.value == [label]
      assert feature['image'].bytes_list.value == [png]
    assert len({e.features.feature['id'].bytes_list.value[0]
                for e in examples}) == len(examples)


def test_data_error_in_beam_stays_readable(make_tree, tmp_path):
  root = make_tree(train=4, test=1)
  bad = os.path.join(root, 'test', 'frog', '0000.png')
  with open(bad, 'wb') as f:
    f.write(b'not a png')
  with pytest.raises(Exception) as caught:
    run(sources.Source('image_dir', root), DATA, tmp_path)
  message = sources.find_data_error(caught.value)
  assert message is not None and message.startswith(
      f'{bad} does not decode as an image')


def test_local_dag_runner_caches_and_reports(make_tree, tmp_path):
  from tfx.orchestration import metadata  # pylint: disable=g-import-not-at-top
  from tfx.orchestration import pipeline as tfx_pipeline
  from tfx.orchestration.local import local_dag_runner
  root = make_tree(train=4, test=1)
  source = sources.resolve_source(root, str(tmp_path))
  examples = tmp_path / 'out' / 'Cifar10ExampleGen' / 'examples'

  def run_pipeline(data: DataConfig) -> None:
    local_dag_runner.LocalDagRunner().run(tfx_pipeline.Pipeline(
        pipeline_name='ingest', pipeline_root=str(tmp_path / 'out'),
        components=[component.Cifar10ExampleGen(source, data)],
        enable_cache=True, beam_pipeline_args=['--direct_num_workers=1'],
        metadata_connection_config=metadata.sqlite_metadata_connection_config(
            str(tmp_path / 'metadata.sqlite'))))

  run_pipeline(DATA)
  assert len(os.listdir(examples)) == 1
  run_pipeline(DATA)  # nothing changed: cached
  assert len(os.listdir(examples)) == 1
  run_pipeline(DataConfig(validation_fraction=0.5, split_salt='exec-salt'))
  assert len(os.listdir(examples)) == 2  # a setting changed: re-ran
  files = glob.glob(str(examples / '*' / 'Split-validation' / '*.gz'))
  counts = sorted(sum(1 for _ in tf.data.TFRecordDataset(f, 'GZIP'))
                  for f in files)
  assert counts == [10, 20]  # per class: 0.25 * 4, 0.5 * 4
  with open(os.path.join(root, 'train', 'deer', '0000.png'), 'wb') as f:
    f.write(b'broken')  # a changed source file re-runs ingestion, and fails
  with pytest.raises(Exception) as caught:
    run_pipeline(DATA)
  assert sources.find_data_error(caught.value).startswith(
      f'{os.path.join(root, "train", "deer", "0000.png")} does not decode')
