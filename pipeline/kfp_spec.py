"""What the compiled spec needs for Kubeflow Pipelines 2.x beyond TFX's output.

Called by `pipeline/kubeflow.py` (`compile_spec`), so by `compile` and
`deploy`. Two things:

- **The data's version on ExampleGen.** KFP 2.x caches a task on its input
  parameters, input artifact ids, command and image; ExampleGen's input is a
  URL, so a new archive at the same URL would be served from cache
  (TFX's fingerprint hook, `lifecycle.preCacheCheck`, runs on Vertex AI
  only). At compile time the data is looked up (size and ETag for s3://,
  size and generation for gs://, size and mtime for a path; a folder: its
  files' listing) and the digest is written into ExampleGen's
  `custom_config` as `data_version`: a changed archive changes ExampleGen's
  cache key, re-runs it and, through its new output artifact, everything
  downstream; unchanged data keeps every cache hit. Where the data cannot be
  read from the compiling machine, ExampleGen is compiled with caching off
  (it always re-ingests; downstream then misses too, its input being a new
  artifact), with a note; `kubeflow.data_version` can instead name the
  version ('auto' = look it up, 'off' = caching off). The version is frozen
  into the spec: re-running an old pipeline version after the data changed
  reuses the old cache, so deploy again when the data changes.
- **No cache for ModelSelector.** Its decision depends on the model being
  served, which no input of the task names: a cached selector would skip
  the comparison after the served model changed. Every run re-decides (a
  second run with nothing new pushes nothing: the candidate is the served
  model).
"""

from __future__ import annotations

import hashlib
import json
import os
import re

EXAMPLE_GEN = 'Cifar10ExampleGen'
UNCACHED = ('ModelSelector',)  # tasks that read state no input names


class Unreadable(Exception):
  """The data's version cannot be looked up from here; the message says why."""


def _s3_entries(bucket: str, key: str) -> list[str]:
  import boto3
  import botocore.config
  client = boto3.client('s3', config=botocore.config.Config(
      connect_timeout=5, read_timeout=10, retries={'max_attempts': 1}))
  if not key.endswith('/'):
    try:
      head = client.head_object(Bucket=bucket, Key=key)
      return [f'{key} {head["ContentLength"]} {head["ETag"]}']
    except client.exceptions.ClientError as error:
      if error.response.get('Error', {}).get('Code') not in ('404', 'NoSuchKey'):
        raise
  pages = client.get_paginator('list_objects_v2').paginate(
      Bucket=bucket, Prefix=key.rstrip('/') + '/')
  return [f'{o["Key"]} {o["Size"]} {o["ETag"]}'
          for page in pages for o in page.get('Contents', [])]


def _gs_entries(bucket: str, key: str) -> list[str]:
  from google.cloud import storage
  client = storage.Client()
  blob = client.bucket(bucket).get_blob(key) if key else None
  blobs = [blob] if blob else client.list_blobs(
      bucket, prefix=key.rstrip('/') + '/')
  return [f'{b.name} {b.size} {b.generation}' for b in blobs]


def _local_entries(path: str) -> list[str]:
  paths = [path] if os.path.isfile(path) else sorted(
      os.path.join(folder, name) for folder, _, names in os.walk(path)
      for name in names)
  return [f'{p} {os.stat(p).st_size} {os.stat(p).st_mtime_ns}' for p in paths]


def data_version(url: str) -> str:
  """16 hex digits naming the data at `url` as it is now; raises Unreadable."""
  found = re.match(r'(s3|gs)://([^/]+)/?(.*)$', url)
  try:
    if found:
      read = _s3_entries if found.group(1) == 's3' else _gs_entries
      entries = read(found.group(2), found.group(3))
    else:
      entries = _local_entries(url)
  except Exception as error:  # pylint: disable=broad-except
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    raise Unreadable(f'{type(error).__name__}: {reason}') from None
  if not entries:
    raise Unreadable('nothing there')
  return hashlib.sha256('\n'.join(sorted(entries)).encode()).hexdigest()[:16]


def stamp_data_version(spec: dict, url: str, setting: str) -> str | None:
  """Writes the data's version into ExampleGen's custom_config in `spec`, or
  turns ExampleGen's caching off; returns a note for the user, or None."""
  task = spec['root']['dag']['tasks'][EXAMPLE_GEN]
  if setting == 'off':
    task['cachingOptions'] = {'enableCache': False}
    return None
  version = setting
  if setting == 'auto':
    try:
      version = data_version(url)
    except Unreadable as why:
      task['cachingOptions'] = {'enableCache': False}
      return (f'note: cannot look up {url} from here ({why}), so ExampleGen '
              'is compiled with caching off and every run re-ingests (and '
              're-runs what follows); make the data readable here or pass '
              '--set kubeflow.data_version=VERSION.')
  value = task['inputs']['parameters']['custom_config']['runtimeValue']
  custom = json.loads(value['constant'])
  custom['custom_config']['value']['data_version'] = version
  value['constant'] = json.dumps(custom, indent=2, sort_keys=True)
  return None


def adapt(spec: dict, url: str, data_version_setting: str) -> list[str]:
  """Both changes above, on the compiled `spec`; returns notes for the user."""
  for task in UNCACHED:
    spec['root']['dag']['tasks'][task]['cachingOptions'] = {'enableCache': False}
  note = stamp_data_version(spec, url, data_version_setting)
  return [note] if note else []

