"""A node of the compiled spec, run as KFP runs it, on an S3 pipeline root
(pipeline/pod.py, pipeline/object_store.py, pipeline/kubeflow.py).

Run by pytest. KFP's launcher runs each node's container command with `{{$}}`
replaced by the ExecutorInput JSON (artifact URIs, parameter values, the
output file). Here the ImageValidator node's command, args and environment
come from a spec compiled for an s3:// root, its input Examples are uploaded
to moto's S3 server (tests/conftest.py), and the node must exit 0 and leave
its report in the bucket, read back with boto3.
"""

import json
import os
import subprocess
import sys

import yaml

from pipeline import cli
from tests.conftest import S3_BUCKET, s3_client, s3_env, synthetic_images

ROOT_URL = f's3://{S3_BUCKET}/root'
SPLITS = {'train': 8, 'validation': 2, 'test': 2}  # images per class


def write_examples(client, prefix: str) -> None:
  """Examples like Cifar10ExampleGen's (gzipped TFRecords per split) in S3."""
  import io
  import tempfile

  import tensorflow as tf
  from PIL import Image

  from components.ingest.executor import to_example
  for index, (split, per_class) in enumerate(SPLITS.items()):
    images, labels = synthetic_images(per_class, seed=index)
    with tempfile.NamedTemporaryFile(suffix='.gz') as handle:
      with tf.io.TFRecordWriter(handle.name, options='GZIP') as writer:
        for i, (image, label) in enumerate(zip(images, labels)):
          png = io.BytesIO()
          Image.fromarray(image).save(png, format='PNG')
          writer.write(to_example(f'{split}/{i}', int(label), png.getvalue()))
      client.upload_file(handle.name, S3_BUCKET, f'{prefix}/Split-{split}/data.gz')


def test_a_node_runs_through_the_pod_command_on_s3(s3_endpoint, tmp_path):
  spec_path = tmp_path / 'pipeline.yaml'
  assert cli.main(['compile', '--preset', 'quick', '--image', 'img:1',
                   '--pipeline-root', ROOT_URL,
                   '--data', f's3://{S3_BUCKET}/data/cifar-10-python.tar.gz',
                   '--set', f'kubeflow.s3_endpoint={s3_endpoint}',
                   '--set', 'kubeflow.s3_secret=', '--output', str(spec_path)]) == 0
  (spec,) = yaml.safe_load_all(spec_path.read_text())  # no secret: one document
  task = spec['root']['dag']['tasks']['ImageValidator']
  component = spec['components'][task['componentRef']['name']]
  container = spec['deploymentSpec']['executors'][component['executorLabel']][
      'container']

  client = s3_client(s3_endpoint)
  write_examples(client, 'root/examples')
  schema = lambda kind, name: component[kind]['artifacts'][name]['artifactType']
  executor_input = {
      'inputs': {
          'artifacts': {'examples': {'artifacts': [{
              'uri': f'{ROOT_URL}/examples', 'name': 'examples-1',
              'type': schema('inputDefinitions', 'examples'),
              'metadata': {'split_names': json.dumps(list(SPLITS))}}]}},
          'parameterValues': {
              name: value['runtimeValue']['constant']
              for name, value in task['inputs']['parameters'].items()}},
      'outputs': {
          'artifacts': {'report': {'artifacts': [{
              'uri': f'{ROOT_URL}/ImageValidator/report', 'name': 'report-1',
              'type': schema('outputDefinitions', 'report')}]}},
          'outputFile': str(tmp_path / 'output_metadata.json')}}
  args = [a.replace('{{$}}', json.dumps(executor_input)) for a in container['args']]
  env = dict(os.environ, **{e['name']: e['value'] for e in container['env']},
             **{k: v for k, v in s3_env(s3_endpoint).items()
                if k.startswith('AWS_') and 'KEY' in k})  # the secret's part
  assert container['command'][:1] == ['python']
  child = subprocess.run([sys.executable] + container['command'][1:] + args,
                         env=env, capture_output=True, text=True, timeout=300,
                         check=False)
  assert child.returncode == 0, child.stderr[-4000:]
  body = client.get_object(Bucket=S3_BUCKET, Key='root/ImageValidator/report/report.json')
  report = json.loads(body['Body'].read())
  assert report['failures'] == [], report
  assert {s: sum(report['splits'][s]['class_counts']) for s in SPLITS} == {
      s: n * 10 for s, n in SPLITS.items()}
  assert (tmp_path / 'output_metadata.json').exists()  # KFP reads it back
