"""Compiles the pipeline into a Kubeflow Pipelines v2 spec (IR YAML).

Called by `pipeline/commands/compile.py` and `pipeline/commands/deploy.py`.
The DAG is the one `pipeline.create.create_pipeline` builds for the local
runner, called here with the cluster's locations (nothing is rewritten
afterwards), then compiled with TFX's `KubeflowV2DagRunner`:

- the data is named as the pods see it (`sources.remote_source`, nothing is
  opened at compile time);
- the pipeline root is `kubeflow.pipeline_root`, the schema the checkout's
  file at `IMAGE_ROOT` (where the Dockerfile puts the project), a relative
  serving folder lies under the pipeline root, and there is no metadata
  connection (the cluster has its own);
- the Trainers request CPU, memory and `gpus` accelerators of
  `kubeflow.accelerator_type`; every other node requests nothing;
- the pipeline root is written into the spec (`defaultPipelineRoot`), which
  TFX's YAML output leaves out, so an uploaded spec runs without arguments.
- every node runs `python -m pipeline.pod` (TFX's container entrypoint,
  wrapped); an S3 or MinIO root adds the S3 settings to every node's
  environment and its secret as a kubernetes platform spec
  (`pipeline/object_store.py`).

Runtime parameters: none are exposed. Epochs, thresholds and the rest live
inside the Trainers' `custom_config` and the Evaluators' `eval_config`, which
TFX cannot parameterise, and baking them in keeps every run reproducible from
its spec. To change one, compile again with `--set` and deploy a new version.

TensorFlow, TFX and kfp are imported inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import sys

from pipeline import kfp_spec, object_store
from pipeline.config import ConfigError, PipelineConfig

IMAGE_ROOT = '/pipeline'  # the project's folder in the image (Dockerfile WORKDIR)
SCHEMA_PATH = 'data/schema.pbtxt'  # the curated schema, inside the project
POD_COMMAND = ['python', '-m', 'pipeline.pod']  # TFX's entrypoint, wrapped
ROOT_SCHEMES = ('gs', 's3', 'minio')  # object stores KFP accepts as pipeline root
_PLACEHOLDERS = ('your-org', 'your-bucket')  # in KubeflowConfig's defaults
_BYTES_PER_GIB = 2 ** 30


def check(config: PipelineConfig, *, for_upload: bool = False) -> list[str]:
  """Raises ConfigError on an unusable Kubeflow setting; returns notes.

  Cheap (no TFX): commands call it before the slow imports. With
  `for_upload`, the placeholder image and bucket of the defaults are errors.
  """
  k = config.kubeflow
  if not k.image.strip() or re.search(r'\s', k.image):
    raise ConfigError(f'kubeflow.image {k.image!r} is not an image reference: '
                      'pass --image REGISTRY/IMAGE:TAG.')
  scheme = re.match(r'([a-z0-9]+)://[^/]+', k.pipeline_root)
  if not scheme or scheme.group(1) not in ROOT_SCHEMES:
    raise ConfigError(
        f'kubeflow.pipeline_root {k.pipeline_root!r} must be a bucket URL the '
        f'pods can write ({", ".join(s + "://BUCKET/..." for s in ROOT_SCHEMES)}'
        '): pass --pipeline-root.')
  if k.trainer_cpu <= 0 or k.trainer_memory_gb <= 0:
    raise ConfigError('kubeflow.trainer_cpu and kubeflow.trainer_memory_gb '
                      'must be > 0.')
  for name, trainer in config.models.items():
    if trainer.gpus < 0:
      raise ConfigError(f'{name}.gpus must be >= 0 (0 = train on CPU).')
    if trainer.gpus and not k.accelerator_type.strip():
      raise ConfigError('kubeflow.accelerator_type must name the GPU, e.g. '
                        'nvidia.com/gpu (KFP) or NVIDIA_TESLA_T4 (Vertex AI).')
  placeholders = [(what, value, flag) for what, value, flag in (
      ('image', k.image, '--image'),
      ('pipeline root', k.pipeline_root, '--pipeline-root'))
                  if any(p in value for p in _PLACEHOLDERS)]
  notes = []
  if placeholders:
    message = ('; '.join(f'the {what} {value} is a placeholder of the defaults'
                         for what, value, _ in placeholders) + ': pass ' +
               ' and '.join(flag for _, _, flag in placeholders) + '.')
    if for_upload:
      raise ConfigError(f'Not uploading: {message}')
    notes.append(f'note: {message}')
  if k.s3_endpoint and not re.match(r'https?://[^/]+$', k.s3_endpoint):
    raise ConfigError(f'kubeflow.s3_endpoint {k.s3_endpoint!r} must be an '
                      'http(s)://HOST[:PORT] URL, e.g. '
                      f'{object_store.KFP_MINIO_ENDPOINT}.')
  notes += object_store.notes(config)
  return notes


def serving_dir(config: PipelineConfig) -> str:
  """Where ModelSelector pushes on the cluster: a relative folder moves under
  the pipeline root; a URL or an absolute (mounted) path stays as set."""
  directory = object_store.tfx_url(config.serving.directory)
  if '://' in directory or directory.startswith('/'):
    return directory
  return posixpath.join(object_store.tfx_root(config).rstrip('/'),
                        directory.strip('/') or 'serving_model')


def trainer_resources(config: PipelineConfig, name: str):
  """The ResourceSpec of Trainer `name`: CPU, memory (GB) and its GPUs."""
  from kfp.pipeline_spec import pipeline_spec_pb2
  spec_class = (pipeline_spec_pb2.PipelineDeploymentConfig
                .PipelineContainerSpec.ResourceSpec)
  k = config.kubeflow
  memory_gb = round(k.trainer_memory_gb * _BYTES_PER_GIB / 1e9, 3)  # KFP: GB
  spec = spec_class(cpu_limit=k.trainer_cpu, cpu_request=k.trainer_cpu,
                    memory_limit=memory_gb, memory_request=memory_gb)
  gpus = config.models[name].gpus
  if gpus:
    spec.accelerator.CopyFrom(spec_class.AcceleratorConfig(
        type=k.accelerator_type, count=gpus))
  return spec


def pod_source(config: PipelineConfig):
  """The data as the pods see it (kubeflow.data, else data.source); raises
  sources.DataError for a path only this machine can see."""
  from components.ingest import sources
  return sources.remote_source(config.kubeflow.data or config.data.source)


def build(config: PipelineConfig):
  """`create_pipeline` with the cluster's locations, Trainers with resources."""
  from pipeline.create import create_pipeline, trainer_id
  pipeline = create_pipeline(
      config, source=pod_source(config),
      pipeline_root=object_store.tfx_root(config),
      serving_dir=serving_dir(config),
      schema_uri=posixpath.join(IMAGE_ROOT, SCHEMA_PATH),
      metadata_connection_config=None,  # the cluster's own ML Metadata
      beam_args=list(config.beam_args))
  trainers = {trainer_id(name): name for name in config.models}
  for node in pipeline.components:
    if node.id in trainers:
      node.with_platform_config(trainer_resources(config, trainers[node.id]))
  return pipeline


def compile_spec(config: PipelineConfig, output: str) -> dict:
  """Writes the KFP v2 pipeline spec of `config` to `output`; returns it."""
  import yaml
  from tfx import v1 as tfx
  runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
      config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
          display_name=config.name, default_image=config.kubeflow.image,
          default_commands=POD_COMMAND, use_pipeline_spec_2_1=True))
  job = runner.run(build(config), write_out=False)
  spec = job['pipelineSpec']
  spec['defaultPipelineRoot'] = object_store.tfx_root(config)
  print_notes(kfp_spec.adapt(spec, pod_source(config).path,
                             config.kubeflow.data_version))
  executors = spec['deploymentSpec']['executors']
  env = object_store.pod_env(config)
  containers = [label for label, e in executors.items() if 'container' in e]
  for label in containers if env else ():
    executors[label]['container']['env'] = env
  body = yaml.safe_dump(spec, sort_keys=True)
  platform = object_store.platform_spec(config, containers)
  if platform:
    body += '---\n' + yaml.safe_dump(platform, sort_keys=True)
  text = (f'# PIPELINE DEFINITION\n# Name: {config.name}\n'
          f'# Description: {config.name}, preset {config.preset}, compiled '
          f'from create_pipeline with TFX {tfx.__version__}.\n' + body)
  folder = os.path.dirname(os.path.abspath(output))
  os.makedirs(folder, exist_ok=True)
  partial = f'{output}.partial'
  with open(partial, 'w') as f:
    f.write(text)
  os.replace(partial, output)
  return spec


def spec_digest(path: str) -> str:
  """12 hex digits of sha256 of the spec file, to name a pipeline version."""
  with open(path, 'rb') as f:
    return hashlib.sha256(f.read()).hexdigest()[:12]


def describe(spec: dict) -> list[str]:
  """One line per node: its id and what its container requests."""
  executors = spec['deploymentSpec']['executors']
  lines = []
  for task, body in sorted(spec['root']['dag']['tasks'].items()):
    label = spec['components'][body['componentRef']['name']]['executorLabel']
    resources = executors[label]['container'].get('resources', {})
    asks = []
    accelerator = resources.get('accelerator')
    if accelerator:
      asks.append(f'{accelerator.get("count", 0)} x {accelerator.get("type")}')
    if 'cpuLimit' in resources:
      asks.append(f'{resources["cpuLimit"]:g} CPU')
    if 'memoryLimit' in resources:
      asks.append(f'{resources["memoryLimit"]:g} GB memory')
    lines.append(f'  {task:<20} {", ".join(asks) or "no requests (defaults)"}')
  return lines


def print_notes(notes: list[str]) -> None:
  for note in notes:
    print(f'cifar10-tfx: {note}', file=sys.stderr)
