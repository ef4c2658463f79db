"""`cifar10-tfx compile`: the Kubeflow spec holds the local DAG, as configured.

The spec is read back with the KFP SDK's own loader and the kfp-pipeline-spec
protos, and compared with `create_pipeline` for the same configuration.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pathlib

import pytest

from components.ingest import sources
from pipeline import cli
from pipeline import config as config_lib
from pipeline import overrides

ROOT = pathlib.Path(__file__).resolve().parents[2]  # the compiling checkout

IMAGE = 'registry.example.com/ml/cifar10-tfx:test-1'
PIPELINE_ROOT = 'gs://test-bucket/cifar10-tfx'
DATA = 'gs://test-bucket/data/cifar-10-python.tar.gz'
SETTINGS = ('vgg16.gpus=2', 'alexnet.epochs=7', 'kubeflow.trainer_cpu=6',
            'kubeflow.trainer_memory_gb=16', 'kubeflow.accelerator_type=NVIDIA_TESLA_T4',
            'beam_args=--direct_num_workers=2,--direct_running_mode=multi_threading')
BEAM_NODES = ('Cifar10ExampleGen', 'StatisticsGen', 'Transform',
              'Evaluator_alexnet', 'Evaluator_vgg16')


def compile_args(output) -> list[str]:
  args = ['compile', '--preset', 'quick', '--image', IMAGE, '--pipeline-root',
          PIPELINE_ROOT, '--data', DATA, '--output', str(output)]
  for setting in SETTINGS:
    args += ['--set', setting]
  return args


def expected_config() -> config_lib.PipelineConfig:
  config = config_lib.preset('quick')
  config.data.source, config.kubeflow.pipeline_root = DATA, PIPELINE_ROOT
  for setting in SETTINGS:
    overrides.apply(config, setting)
  return config_lib.validate(config)


@pytest.fixture(scope='module')
def compiled(tmp_path_factory):
  """(text, PipelineSpec proto, the KFP loader's component, stdout)."""
  import yaml
  from google.protobuf import json_format
  from kfp import components
  from kfp.pipeline_spec import pipeline_spec_pb2
  path = tmp_path_factory.mktemp('kfp') / 'pipeline.yaml'
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    assert cli.main(compile_args(path)) == 0
  text = path.read_text()
  spec = json_format.ParseDict(yaml.safe_load(text),
                               pipeline_spec_pb2.PipelineSpec())  # strict
  return text, spec, components.load_component_from_file(str(path)), out.getvalue()


def local_dag(config) -> dict[str, set[str]]:
  """node id -> ids of its upstream nodes, as create_pipeline builds them."""
  from pipeline import kubeflow
  pipeline = kubeflow.build(config)
  return {node.id: {up.id for up in node.upstream_nodes}
          for node in pipeline.components}


def executor(spec, task: str):
  label = spec.components[spec.root.dag.tasks[task].component_ref.name].executor_label
  return spec.deployment_spec.fields['executors'].struct_value.fields[label]


def container(spec, task: str) -> dict:
  from google.protobuf import json_format
  return json_format.MessageToDict(executor(spec, task))['container']


def constant(spec, task: str, name: str):
  """A task's constant input parameter (`runtimeValue.constant`)."""
  from google.protobuf import json_format
  value = spec.root.dag.tasks[task].inputs.parameters[name].runtime_value
  return json_format.MessageToDict(value.constant) if value.HasField(
      'constant') else None


def test_every_node_of_the_local_dag_with_the_same_dependencies(compiled):
  _, spec, component, _ = compiled
  dag = local_dag(expected_config())
  assert set(spec.root.dag.tasks) == set(dag) and len(dag) == 12
  for task_id, upstream in dag.items():
    assert set(spec.root.dag.tasks[task_id].dependent_tasks) == upstream, task_id
  assert component.pipeline_spec.root.dag.tasks.keys() == spec.root.dag.tasks.keys()


def test_gpus_cpu_and_memory_on_both_trainers_and_nowhere_else(compiled):
  _, spec, _, stdout = compiled
  gib_in_gb = 2 ** 30 / 1e9
  for task, gpus in (('Trainer_alexnet', 1), ('Trainer_vgg16', 2)):
    resources = container(spec, task)['resources']
    assert resources['accelerator'] == {'type': 'NVIDIA_TESLA_T4',
                                        'count': str(gpus)}
    assert resources['cpuLimit'] == resources['cpuRequest'] == 6
    assert resources['memoryLimit'] == pytest.approx(16 * gib_in_gb, abs=1e-3)
    assert f'{gpus} x NVIDIA_TESLA_T4, 6 CPU' in stdout
  for task in spec.root.dag.tasks:
    if not task.startswith('Trainer_'):
      assert 'resources' not in container(spec, task), task
  assert stdout.count("no requests") == 10


def test_image_pipeline_root_and_paths_are_the_cluster_ones(compiled):
  text, spec, component, _ = compiled
  assert spec.default_pipeline_root == PIPELINE_ROOT
  assert component.pipeline_spec.default_pipeline_root == PIPELINE_ROOT
  for task in spec.root.dag.tasks:
    image = container(spec, task)['image']
    assert image == IMAGE, task
    assert container(spec, task)['command'] == ['python', '-m', 'pipeline.pod']
    assert 'env' not in container(spec, task)  # gs:// needs no settings
  assert '\n---\n' not in text  # and no platform spec (no secret)
  assert constant(spec, 'ImportSchemaGen', 'schema_file') == (
      '/pipeline/data/schema.pbtxt')
  serving = json.loads(constant(spec, 'ModelSelector', 'settings'))
  assert serving['directory'] == f'{PIPELINE_ROOT}/serving_model'
  assert constant(spec, 'Cifar10ExampleGen', 'input_base') == (
      'gs://test-bucket/data')
  ingest = json.loads(constant(spec, 'Cifar10ExampleGen', 'custom_config'))
  ingest = json.loads(ingest['custom_config']['value']['settings'])
  assert ingest['path'] == DATA and ingest['kind'] == 'pickle_archive'


def test_the_spec_names_no_path_of_the_compiling_machine(compiled, tmp_path):
  text = compiled[0]
  for local in {str(ROOT), os.getcwd(), os.path.expanduser('~'),
                str(tmp_path.parent.parent)}:
    assert local not in text, local
  # Where a local path would go, there are the cluster's locations.
  assert '/pipeline/data/schema.pbtxt' in text
  assert f'{PIPELINE_ROOT}/serving_model' in text


def test_trainers_run_installed_code_and_beam_args_reach_beam_nodes(compiled):
  _, spec, _, _ = compiled
  for name, module in (('alexnet', 'alexnet'), ('vgg16', 'vgg16')):
    assert constant(spec, f'Trainer_{name}', 'run_fn') == (
        f'components.trainers.{module}.run_fn')
    assert not constant(spec, f'Trainer_{name}', 'module_file')
  for task in BEAM_NODES:
    args = container(spec, task)['args']
    assert args[-2:] == ['--direct_num_workers=2',
                         '--direct_running_mode=multi_threading'], task


def test_no_runtime_parameters_settings_are_compiled_in(compiled):
  _, spec, component, _ = compiled
  assert not spec.root.input_definitions.parameters
  assert not component.component_spec.inputs
  trainer = json.loads(constant(spec, 'Trainer_alexnet', 'custom_config'))
  assert trainer['model_name'] == 'alexnet'
  assert json.loads(trainer['settings'])['epochs'] == 7
  def lower_bounds(node):
    if isinstance(node, dict):
      bound = node.get('lower_bound')
      return ([bound] if bound is not None else []) + [
          b for item in node.values() for b in lower_bounds(item)]
    return [b for item in node for b in lower_bounds(item)] if isinstance(
        node, list) else []
  eval_config = json.loads(constant(spec, 'Evaluator_alexnet', 'eval_config'))
  threshold = expected_config().evaluation.accuracy_threshold
  assert lower_bounds(eval_config) == [threshold]


def test_schema_2_1_every_parameter_a_typed_runtime_constant(compiled):
  """KFP 2.x's driver reads runtimeValue.constant only (schema 2.0.0's
  constantValue stops the first task) and checks it against parameterType."""
  import yaml
  text, _, _, _ = compiled
  spec = yaml.safe_load(text)
  assert spec['schemaVersion'] == '2.1.0' and 'constantValue' not in text
  for name, task in spec['root']['dag']['tasks'].items():
    for param in task.get('inputs', {}).get('parameters', {}).values():
      assert list(param) == ['runtimeValue'], name
      assert list(param['runtimeValue']) == ['constant'], name
  for name, component in spec['components'].items():
    for param in component.get('inputDefinitions', {}).get('parameters', {}).values():
      assert list(param) == ['parameterType'], name


def test_kfp_caching_off_for_the_selector_and_for_unreadable_data(compiled):
  _, spec, _, _ = compiled  # DATA is on a bucket this machine cannot read
  uncached = {name for name, task in spec.root.dag.tasks.items()
              if not task.caching_options.enable_cache}
  assert uncached == {'Cifar10ExampleGen', 'ModelSelector'}
  ingest = json.loads(constant(spec, 'Cifar10ExampleGen', 'custom_config'))
  assert 'data_version' not in ingest['custom_config']['value']


def test_a_named_data_version_and_no_local_folder_left(tmp_path, monkeypatch):
  import yaml
  monkeypatch.chdir(tmp_path)
  args = compile_args('p.yaml') + ['--set', 'kubeflow.data_version=v7']
  with contextlib.redirect_stdout(io.StringIO()):
    assert cli.main(args) == 0
  assert os.listdir(tmp_path) == ['p.yaml']  # no ./pipeline_output
  task = yaml.safe_load((tmp_path / 'p.yaml').read_text())['root']['dag'][
      'tasks']['Cifar10ExampleGen']
  assert task['cachingOptions'] == {'enableCache': True}
  ingest = json.loads(task['inputs']['parameters']['custom_config'][
      'runtimeValue']['constant'])
  assert ingest['custom_config']['value']['data_version'] == 'v7'


@pytest.mark.parametrize('args, code, words', [
    (['--pipeline-root', './local'], 2, 'kubeflow.pipeline_root'),
    (['--pipeline-root', 'hdfs://nn/x'], 2, 'kubeflow.pipeline_root'),
    (['--data', 'relative/cifar.tar.gz'], 1, 'pods cannot see'),
    (['--data', 'https://example.com/c.tar.gz'], 1, 'do not download'),
    (['--set', 'vgg16.gpus=-1'], 2, 'vgg16.gpus must be >= 0'),
    (['--set', 'kubeflow.s3_endpoint=minio:9000'], 2, 'http(s)://HOST[:PORT]'),
])
def test_unusable_settings_end_with_one_message(args, code, words, tmp_path,
                                                capsys):
  base = ['compile', '--pipeline-root', PIPELINE_ROOT, '--data', DATA,
          '--output', str(tmp_path / 'p.yaml')]
  assert cli.main(base + args) == code
  err = capsys.readouterr().err
  assert words in err and 'Traceback' not in err and len(err.splitlines()) == 1
  assert not (tmp_path / 'p.yaml').exists()


@pytest.mark.parametrize('spec, kind', [
    ('gs://b/cifar-10-python.tar.gz', 'pickle_archive'),
    ('s3://b/x/cifar10-jpeg.tar.gz', 'image_archive'),
    ('gs://b/x/cifar-10-batches-py/', 'pickle_dir'),
    ('/mnt/data/cifar-images', 'image_dir'),
])
def test_remote_source_reads_the_kind_from_the_name(spec, kind):
  source = sources.remote_source(spec)
  assert source == sources.Source(kind, spec.rstrip('/'))


def test_a_minio_root_becomes_s3_with_endpoint_and_secret_on_every_node(
    tmp_path, capsys):
  import yaml
  from kfp import components
  path = tmp_path / 'minio.yaml'
  assert cli.main(['compile', '--preset', 'quick', '--image', IMAGE,
                   '--pipeline-root', 'minio://mlpipeline/cifar10-tfx',
                   '--data', 's3://mlpipeline/data/cifar-10-python.tar.gz',
                   '--output', str(path)]) == 0
  assert 'TFX cannot read minio://' in capsys.readouterr().err
  pipeline_doc, platform_doc = yaml.safe_load_all(path.read_text())
  root = 's3://mlpipeline/cifar10-tfx'
  assert pipeline_doc['defaultPipelineRoot'] == root
  executors = pipeline_doc['deploymentSpec']['executors']
  for label, body in executors.items():
    assert {e['name']: e['value'] for e in body['container']['env']} == {
        'AWS_REGION': 'us-east-1', 'AWS_DEFAULT_REGION': 'us-east-1',
        'S3_ENDPOINT': 'http://minio-service.kubeflow:9000',
        'AWS_ENDPOINT_URL_S3': 'http://minio-service.kubeflow:9000',
        'S3_USE_HTTPS': '0', 'S3_VERIFY_SSL': '0'}, label
  secrets = platform_doc['platforms']['kubernetes']['deploymentSpec']['executors']
  assert set(secrets) == set(executors)
  for mapping in secrets.values():
    assert mapping['secretAsEnv'] == [{
        'secretName': 'mlpipeline-minio-artifact', 'keyToEnv': [
            {'secretKey': 'accesskey', 'envVar': 'AWS_ACCESS_KEY_ID'},
            {'secretKey': 'secretkey', 'envVar': 'AWS_SECRET_ACCESS_KEY'}]}]
  loaded = components.load_component_from_file(str(path))  # KFP reads both
  assert loaded.pipeline_spec.default_pipeline_root == root
  assert 'minio://' not in path.read_text()
  selector_inputs = pipeline_doc['root']['dag']['tasks']['ModelSelector']['inputs']
  serving = selector_inputs['parameters']['settings']['runtimeValue']
  assert json.loads(serving['constant'])['directory'] == f'{root}/serving_model'
