"""`DataConfig`: what a user may set about the data and its splits.

A leaf module. Composed into the pipeline's configuration by
`pipeline/config.py`; the runners resolve `source` (`sources.resolve_source`)
and `Cifar10ExampleGen` hands the rest to its executor as one JSON string
(`components.settings`) in `IngestSettings`. `Limits` bound every read
of `components.ingest`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Limits:
  """What ingestion reads at most (README, Data validation); `DataConfig`
  carries them as `max_*` settings, `DataConfig.limits()` hands them out."""
  file_bytes: int = 1_000_000  # one image file (a CIFAR-10 JPEG is ~330 bytes, a PNG ~3 KB)
  batch_bytes: int = 100_000_000  # one pickled batch (the official ones: 31 MB)
  archive_bytes: int = 1_000_000_000  # an archive inflated (512 B per entry + data)


@dataclass
class DataConfig:
  source: str = ''  # path or URL; '' = look in the caches, then download
  cache_dir: str = '~/.keras/datasets'  # where a download is kept
  validation_fraction: float = 0.1  # of the official training set, per class
  train_per_class: int = 0  # images per class read from the training set, 0 = all
  test_per_class: int = 0  # images per class read from the test set, 0 = all
  split_salt: str = 'cifar10-validation-v1'  # changes which images go to validation
  max_file_bytes: int = Limits.file_bytes  # larger image files are rejected unread
  max_batch_bytes: int = Limits.batch_bytes  # larger pickled batches too
  max_archive_bytes: int = Limits.archive_bytes  # an archive inflating past this too

  def limits(self) -> Limits:
    return Limits(int(self.max_file_bytes), int(self.max_batch_bytes),
                  int(self.max_archive_bytes))


@dataclass
class IngestSettings:
  """What Cifar10ExampleGen hands its executor, as one JSON string."""
  kind: str = ''  # the resolved source's kind (sources.KINDS)
  path: str = ''  # the resolved source's path or URL
  data: DataConfig = field(default_factory=DataConfig)
  code_fingerprint: str = ''  # of the ingest code: an edit re-runs ingestion
