"""`--data` as an object-store URL (components/ingest/sources.py, trees.py, pickles.py).

Run by pytest. On Kubeflow the data is a bucket URL (gs://, s3://) that the
readers reach through TensorFlow's file systems; here the in-memory `ram://`
file system stands in for a bucket. Each layout read from the URL must give
the same records as the same files read from disk.
"""

import os
import uuid

import pytest

from components import fileio
from components.ingest import sources
from components.ingest.sources import DataError, Source


def upload(path: str) -> str:
  """Copies a local file or folder to a fresh ram:// bucket; returns its URL."""
  target = f'ram://data-{uuid.uuid4().hex[:8]}/{os.path.basename(path)}'
  if os.path.isdir(path):
    fileio.copy_tree(path, target)
  else:
    fileio.makedirs(os.path.dirname(target))
    fileio.copy_file(path, target)
  return target


def records(source: Source, split: str) -> list:
  return list(sources.read_split(source, split, validation_fraction=0.25,
                                 salt='s'))


@pytest.mark.parametrize('layout', ['image_archive', 'image_dir',
                                    'pickle_archive', 'pickle_dir'])
def test_each_layout_reads_the_same_from_a_bucket(layout, tree_data, pickle_data):
  local = {'image_archive': tree_data.archive, 'image_dir': tree_data.root,
           'pickle_archive': pickle_data.archive,
           'pickle_dir': pickle_data.folder}[layout]
  url = upload(local)
  source = sources.resolve_source(url, '/nonexistent-cache')
  assert source == Source(layout, url)
  assert sources.remote_source(url) == source  # what pods infer from the name
  for split in ('train', 'validation', 'test'):
    assert records(source, split) == records(Source(layout, local), split)


def test_a_missing_or_bad_url_names_what_to_do(tmp_path):
  with pytest.raises(DataError, match=r'ram://nowhere/x.tar.gz does not exist'
                     r'.*gs:// or s3:// URL'):
    sources.resolve_source('ram://nowhere/x.tar.gz', str(tmp_path))
  junk = tmp_path / 'junk.tar.gz'
  junk.write_bytes(b'not an archive')
  with pytest.raises(DataError, match='is not a readable .tar.gz archive'):
    sources.resolve_source(upload(str(junk)), str(tmp_path))
