"""Bad data stops the run before Transform, with the problem in the message.

Two layers: the ingest itself rejects what it can name (a record, a file), and
ExampleValidator + DataGate catch what reaches the examples anyway. The second
is tested by letting bad records through ingestion (monkeypatching the reader)
and running the real DAG.
"""

from __future__ import annotations

import os
import pickle
import tarfile

import numpy as np
import pytest

from tests.conftest import fixture_config, run_pipeline, write_image_tree

pytestmark = pytest.mark.e2e


def _ran(root: str) -> set[str]:
  from pipeline import runs
  records = runs.list_runs(os.path.join(root, 'metadata.sqlite'))
  return {n.node_id for r in records for n in r.nodes}


@pytest.mark.parametrize('bad_record', [
    ('label', 42), ('image', b'these bytes are not an image')])
def test_anomalies_stop_the_run_before_transform(tmp_path, monkeypatch, bad_record):
  from components.ingest import sources
  from pipeline.local import RunFailed
  field, value = bad_record
  real_read_split = sources.read_split

  def read_split_with_a_bad_record(source, split, **kwargs):
    for index, (image_id, label, png) in enumerate(
        real_read_split(source, split, **kwargs)):
      if split == 'train' and index == 3:
        label = value if field == 'label' else label
        png = value if field == 'image' else png
      yield image_id, label, png
  monkeypatch.setattr(sources, 'read_split', read_split_with_a_bad_record)

  # TFDV computes image statistics only from 100 values on (image_stats_generator
  # _VALUES_THRESHOLD): 13 per class leaves 104 in train.
  data = write_image_tree(tmp_path / 'data', n_train=13, n_test=1)
  config = fixture_config(tmp_path)
  with pytest.raises(RunFailed) as failure:
    run_pipeline(config, data)
  message = str(failure.value)
  assert message.startswith('Data validation failed')
  assert f"[train] feature '{field}'" in message
  ran = _ran(config.root)
  assert 'ExampleValidator' in ran
  assert not ran & {'Transform', 'Trainer_alexnet', 'Trainer_vgg16'}
  assert not os.path.exists(config.serving.directory)


def test_label_out_of_range_in_a_pickle_names_the_record(tmp_path):
  """The official pickle format with label 10: ingestion names file and record."""
  from pipeline.local import RunFailed
  folder = tmp_path / 'cifar-10-batches-py'
  folder.mkdir()
  rng = np.random.default_rng(0)
  names = [b'airplane', b'automobile', b'bird', b'cat', b'deer', b'dog',
           b'frog', b'horse', b'ship', b'truck']
  with open(folder / 'batches.meta', 'wb') as f:
    pickle.dump({b'label_names': names, b'num_cases_per_batch': 20}, f)
  for batch in [f'data_batch_{i}' for i in range(1, 6)] + ['test_batch']:
    labels = [i % 10 for i in range(20)]
    if batch == 'data_batch_2':
      labels[7] = 10
    with open(folder / batch, 'wb') as f:
      pickle.dump({b'batch_label': batch.encode(), b'labels': labels,
                   b'data': rng.integers(0, 256, (20, 3072), dtype=np.uint8),
                   b'filenames': [b'x.png'] * 20}, f)
  archive = tmp_path / 'cifar-10-python.tar.gz'
  with tarfile.open(archive, 'w:gz') as tar:
    tar.add(folder, arcname='cifar-10-batches-py')
  config = fixture_config(tmp_path)
  with pytest.raises(RunFailed) as failure:
    run_pipeline(config, str(archive))
  message = str(failure.value)
  assert 'data_batch_2' in message and '10' in message
  assert not _ran(config.root) & {'Transform', 'Trainer_alexnet'}
  assert not os.path.exists(config.serving.directory)
