"""The Cifar10ExampleGen component: CIFAR-10 in, three tf.Example splits out.

Called by the pipeline's assembly (`pipeline.create`), which first resolves the
user's `--data` with `sources.resolve_source`. The component fingerprints the
source files through TFX's FileBasedExampleGen driver (a changed source
re-runs ingestion) and packs the settings, with a fingerprint of the ingest
code, into its custom_config (a changed setting or code re-runs it too).
Outputs gzipped TFRecords of tf.Example in Split-train, Split-validation and
Split-test.
"""

from __future__ import annotations

import hashlib
import os

from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2

from components.ingest import executor
from components.ingest import sources
from components.ingest.config import DataConfig


def ingest_code_fingerprint() -> str:
  """sha256 of this package's Python files: changes when ingestion code does."""
  folder = os.path.dirname(os.path.abspath(__file__))
  digest = hashlib.sha256()
  for name in sorted(os.listdir(folder)):
    if name.endswith('.py'):
      with open(os.path.join(folder, name), 'rb') as f:
        digest.update(name.encode() + b'\0' + f.read())
  return digest.hexdigest()[:16]


class Cifar10ExampleGen(FileBasedExampleGen):
  """ExampleGen for CIFAR-10 read by `components.ingest.sources`."""

  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, source: sources.Source, data: DataConfig,
               code_fingerprint: str = ''):
    """Args:
      source: what `sources.resolve_source` found for the user's `--data`.
      data: validation fraction, split salt and per-class caps.
      code_fingerprint: anything that changes when ingestion must re-run
        although the data did not; '' = `ingest_code_fingerprint()`.
    """
    input_base, patterns = sources.split_patterns(source)
    input_config = example_gen_pb2.Input(splits=[
        example_gen_pb2.Input.Split(name=name, pattern=patterns[name])
        for name in sources.SPLITS])
    super().__init__(
        input_base=input_base,
        input_config=input_config,
        custom_config=executor.make_custom_config(
            source, data, code_fingerprint or ingest_code_fingerprint()))
