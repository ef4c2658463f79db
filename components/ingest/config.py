"""`DataConfig`: what a user may set about the data and its splits.

A leaf module. Composed into the pipeline's configuration by
`pipeline/config.py`; the runners resolve `source` (`sources.resolve_source`)
and `Cifar10ExampleGen` hands the rest to its executor as one JSON string
(`components.settings`) in `IngestSettings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DataConfig:
  source: str = ''  # path or URL; '' = look in the caches, then download
  cache_dir: str = '~/.keras/datasets'  # where a download is kept
  validation_fraction: float = 0.1  # of the official training set, per class
  train_per_class: int = 0  # images per class read from the training set, 0 = all
  test_per_class: int = 0  # images per class read from the test set, 0 = all
  split_salt: str = 'cifar10-validation-v1'  # changes which images go to validation


@dataclass
class IngestSettings:
  """What Cifar10ExampleGen hands its executor, as one JSON string."""
  kind: str = ''  # the resolved source's kind (sources.KINDS)
  path: str = ''  # the resolved source's path or URL
  data: DataConfig = field(default_factory=DataConfig)
  code_fingerprint: str = ''  # of the ingest code: an edit re-runs ingestion
