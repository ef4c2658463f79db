"""The Cifar10ExampleGen component: CIFAR-10 in, three tf.Example splits out.

Called by `pipeline.create.create_pipeline`, whose caller first resolves the
user's `--data` with `sources.resolve_source`. The component fingerprints the
source files through TFX's FileBasedExampleGen driver (a changed source
re-runs ingestion) and hands its executor one JSON string, `IngestSettings`:
the source, the data settings and the fingerprint of the ingest code's
import closure (a changed setting or an edit of that code re-runs it too).
Outputs gzipped TFRecords of tf.Example in Split-train, Split-validation and
Split-test.
"""

from __future__ import annotations

import dataclasses

from google.protobuf import struct_pb2
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2

from components import settings
from components.fingerprint import code_fingerprint
from components.ingest import executor
from components.ingest import sources
from components.ingest.config import DataConfig, IngestSettings


class Cifar10ExampleGen(FileBasedExampleGen):
  """ExampleGen for CIFAR-10 read by `components.ingest.sources`."""

  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, source: sources.Source, data: DataConfig):
    """Args:
      source: what `sources.resolve_source` found for the user's `--data`.
      data: validation fraction, split salt and per-class caps.
    """
    input_base, patterns = sources.split_patterns(source)
    input_config = example_gen_pb2.Input(splits=[
        example_gen_pb2.Input.Split(name=name, pattern=patterns[name])
        for name in sources.SPLITS])
    # ExampleGen takes its custom config as a proto: a Struct holding the JSON.
    struct = struct_pb2.Struct()
    # The resolved kind and path stand for the source: how the user spelled
    # it (a relative path, a cache) must not re-run ingestion.
    data = dataclasses.replace(data, source='', cache_dir='')
    struct.update({executor.SETTINGS_KEY: settings.to_json(IngestSettings(
        kind=source.kind, path=source.path, data=data,
        code_fingerprint=code_fingerprint(__name__)))})
    custom_config = example_gen_pb2.CustomConfig()
    custom_config.custom_config.Pack(struct)
    super().__init__(input_base=input_base, input_config=input_config,
                     custom_config=custom_config)
