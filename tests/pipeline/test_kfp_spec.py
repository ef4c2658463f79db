"""pipeline/kfp_spec.py without compiling: the data's version, and
ExampleGen's and ModelSelector's caching.

Run by pytest, in seconds; s3:// data is looked up on moto's S3 server
(tests/conftest.py).
"""

from __future__ import annotations

import json

import pytest

from pipeline import kfp_spec


def spec_with_ingest() -> dict:
  custom = {'custom_config': {'@type': 'type.googleapis.com/google.protobuf.Struct',
                              'value': {'path': 'x'}}}
  return {'root': {'dag': {'tasks': {
      'Cifar10ExampleGen': {'cachingOptions': {'enableCache': True}, 'inputs': {
          'parameters': {'custom_config': {'runtimeValue': {
              'constant': json.dumps(custom)}}}}},
      'ModelSelector': {'cachingOptions': {'enableCache': True}}}}}}


def ingest_settings(spec: dict) -> dict:
  task = spec['root']['dag']['tasks']['Cifar10ExampleGen']
  return json.loads(task['inputs']['parameters']['custom_config'][
      'runtimeValue']['constant'])['custom_config']['value']


def test_a_local_archive_version_changes_with_its_content(tmp_path):
  archive = tmp_path / 'cifar-10-python.tar.gz'
  archive.write_bytes(b'one')
  first = kfp_spec.data_version(str(archive))
  assert kfp_spec.data_version(str(archive)) == first
  archive.write_bytes(b'two!')
  assert kfp_spec.data_version(str(archive)) != first
  folder = tmp_path / 'tree'
  (folder / 'a').mkdir(parents=True)
  (folder / 'a' / '1.png').write_bytes(b'x')
  tree = kfp_spec.data_version(str(folder))
  (folder / 'a' / '2.png').write_bytes(b'y')
  assert kfp_spec.data_version(str(folder)) != tree
  with pytest.raises(kfp_spec.Unreadable):
    kfp_spec.data_version(str(tmp_path / 'missing'))


@pytest.mark.parametrize('setting, cached, version, noted', [
    ('auto', True, 'digest', False),
    ('v3', True, 'v3', False),
    ('off', False, None, False),
])
def test_adapt_stamps_the_version_or_turns_caching_off(
    setting, cached, version, noted, tmp_path):
  archive = tmp_path / 'data.tar.gz'
  archive.write_bytes(b'data')
  spec = spec_with_ingest()
  notes = kfp_spec.adapt(spec, str(archive), setting)
  tasks = spec['root']['dag']['tasks']
  assert tasks['ModelSelector']['cachingOptions'] == {'enableCache': False}
  assert tasks['Cifar10ExampleGen']['cachingOptions'] == {'enableCache': cached}
  if version == 'digest':
    version = kfp_spec.data_version(str(archive))
  assert ingest_settings(spec).get('data_version') == version
  assert ingest_settings(spec)['path'] == 'x' and bool(notes) == noted


def test_unreadable_data_turns_ingest_caching_off_with_a_note(tmp_path):
  spec = spec_with_ingest()
  (note,) = kfp_spec.adapt(spec, str(tmp_path / 'nowhere.tar.gz'), 'auto')
  assert 'caching off' in note and 'kubeflow.data_version' in note
  task = spec['root']['dag']['tasks']['Cifar10ExampleGen']
  assert task['cachingOptions'] == {'enableCache': False}


def test_the_version_of_s3_data_follows_its_etags(s3_endpoint, monkeypatch):
  from tests.conftest import S3_BUCKET, s3_client, s3_env
  for key, value in s3_env(s3_endpoint).items():
    monkeypatch.setenv(key, value)
  monkeypatch.setenv('AWS_ENDPOINT_URL_S3', s3_endpoint)
  client, url = s3_client(s3_endpoint), f's3://{S3_BUCKET}/version-test'
  client.put_object(Bucket=S3_BUCKET, Key='version-test/a.tgz', Body=b'one')
  client.put_object(Bucket=S3_BUCKET, Key='version-test/tree/1.png', Body=b'x')
  archive, tree = (kfp_spec.data_version(f'{url}/a.tgz'),
                   kfp_spec.data_version(f'{url}/tree'))
  assert kfp_spec.data_version(f'{url}/tree/') == tree
  client.put_object(Bucket=S3_BUCKET, Key='version-test/a.tgz', Body=b'two')
  client.put_object(Bucket=S3_BUCKET, Key='version-test/tree/2.png', Body=b'y')
  assert kfp_spec.data_version(f'{url}/a.tgz') != archive
  assert kfp_spec.data_version(f'{url}/tree') != tree
  with pytest.raises(kfp_spec.Unreadable, match='nothing there'):
    kfp_spec.data_version(f'{url}/missing.tgz')

