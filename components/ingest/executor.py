"""The custom ExampleGen executor that turns CIFAR-10 into tf.Examples.

Called by TFX through `components.ingest.component.Cifar10ExampleGen`
(its EXECUTOR_SPEC), which also uses `make_custom_config` to pack the settings
that `read_settings` unpacks here. Each split named in the input config
(train, validation, test) becomes one PCollection of serialized tf.Examples
with the features `image` (PNG bytes), `label` (int64, 0-9) and `id` (bytes).

The settings travel as an `example_gen_pb2.CustomConfig` whose `custom_config`
Any packs a `google.protobuf.Struct`; TFX hands it to the executor as the JSON
text of that CustomConfig in exec_properties['custom_config'].
"""

from __future__ import annotations

from typing import Any, Dict, Iterator

import apache_beam as beam
import tensorflow as tf
from google.protobuf import json_format
from google.protobuf import struct_pb2
from tfx.components.example_gen import base_example_gen_executor
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from components.ingest import sources
from components.ingest.config import DataConfig, Limits

SETTINGS = ('kind', 'path', 'validation_fraction', 'salt', 'train_per_class',
            'test_per_class', 'code_fingerprint', 'max_file_bytes',
            'max_batch_bytes', 'max_archive_bytes')
_INTEGERS = ('train_per_class', 'test_per_class', 'max_file_bytes',
             'max_batch_bytes', 'max_archive_bytes')
IMAGE_KEY, LABEL_KEY, ID_KEY = 'image', 'label', 'id'


def make_custom_config(source: sources.Source, data: DataConfig,
                       code_fingerprint: str) -> example_gen_pb2.CustomConfig:
  """Packs what the executor needs; any change here re-runs ingestion."""
  struct = struct_pb2.Struct()
  struct.update({
      'kind': source.kind, 'path': source.path,
      'validation_fraction': float(data.validation_fraction),
      'salt': data.split_salt,
      'train_per_class': int(data.train_per_class),
      'test_per_class': int(data.test_per_class),
      'code_fingerprint': code_fingerprint,
      **{f'max_{k}': int(v) for k, v in vars(data.limits()).items()}})
  config = example_gen_pb2.CustomConfig()
  config.custom_config.Pack(struct)
  return config


def read_settings(exec_properties: Dict[str, Any]) -> Dict[str, Any]:
  """Unpacks exec_properties['custom_config'] (JSON text or the proto)."""
  raw = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
  config = example_gen_pb2.CustomConfig()
  if isinstance(raw, example_gen_pb2.CustomConfig):
    config.CopyFrom(raw)
  elif isinstance(raw, str) and raw:
    proto_utils.json_to_proto(raw, config)
  struct = struct_pb2.Struct()
  if not config.custom_config.Unpack(struct):
    raise ValueError('Cifar10ExampleGen needs its custom_config (a packed '
                     'Struct made by make_custom_config); got '
                     f'{raw!r}. Build the component with Cifar10ExampleGen.')
  settings = json_format.MessageToDict(struct)
  missing = [key for key in SETTINGS if key not in settings]
  if missing:
    raise ValueError(f'custom_config lacks {missing}: build it with '
                     'make_custom_config.')
  for key in _INTEGERS:
    settings[key] = int(settings[key])  # a Struct holds numbers as doubles
  return settings


def to_example(image_id: str, label: int, png: bytes) -> bytes:
  feature = tf.train.Feature
  return tf.train.Example(features=tf.train.Features(feature={
      IMAGE_KEY: feature(bytes_list=tf.train.BytesList(value=[png])),
      LABEL_KEY: feature(int64_list=tf.train.Int64List(value=[label])),
      ID_KEY: feature(bytes_list=tf.train.BytesList(
          value=[image_id.encode('utf-8')])),
  })).SerializeToString()


def _split_examples(split: str, settings: Dict[str, Any]) -> Iterator[bytes]:
  source = sources.Source(settings['kind'], settings['path'])
  for image_id, label, png in sources.read_split(
      source, split, validation_fraction=settings['validation_fraction'],
      salt=settings['salt'], train_per_class=settings['train_per_class'],
      test_per_class=settings['test_per_class'],
      limits=Limits(settings['max_file_bytes'], settings['max_batch_bytes'],
                    settings['max_archive_bytes'])):
    yield to_example(image_id, label, png)


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(bytes)
def _ReadSplit(pipeline: beam.Pipeline, exec_properties: Dict[str, Any],
               split: str) -> beam.pvalue.PCollection:
  """Serialized tf.Examples of one split (a name in sources.SPLITS)."""
  settings = read_settings(exec_properties)
  return (pipeline
          | 'Split' >> beam.Create([split])
          | 'Read' >> beam.FlatMap(_split_examples, settings))


class Executor(base_example_gen_executor.BaseExampleGenExecutor):
  """Reads each input split by name; the splits are made in sources.py."""

  def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
    """(pipeline, exec_properties, split name) -> serialized tf.Examples.

    Unlike TFX's file-based executors the third argument is the split's name,
    not its pattern: train and validation share the same files.
    """
    return _ReadSplit

  def GenerateExamplesByBeam(
      self, pipeline: beam.Pipeline, exec_properties: Dict[str, Any]
  ) -> Dict[str, beam.pvalue.PCollection]:
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(
        exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
    output_config = example_gen_pb2.Output()
    proto_utils.json_to_proto(
        exec_properties.get(standard_component_specs.OUTPUT_CONFIG_KEY) or '{}',
        output_config)
    if output_config.split_config.splits:
      raise ValueError('Cifar10ExampleGen makes its own splits: leave its '
                       'output_config without a split_config.')
    names = [split.name for split in input_config.splits]
    unknown = sorted(set(names) - set(sources.SPLITS))
    if unknown or not names:
      raise ValueError(f'Cifar10ExampleGen reads the splits {sources.SPLITS}; '
                       f'the input config asks for {names}.')
    read = self.GetInputSourceToExamplePTransform()
    # pylint: disable=no-value-for-parameter
    return {name: pipeline | f'InputToRecord[{name}]' >> read(
        exec_properties, name) for name in names}
