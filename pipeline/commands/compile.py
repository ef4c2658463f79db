"""`cifar10-tfx compile`: the Kubeflow Pipelines v2 spec of the pipeline.

Called by `pipeline/cli.py`; `pipeline/commands/deploy.py` reuses
`add_kubeflow_arguments` and `kubeflow_config`. The work is in
`pipeline/kubeflow.py`; settings are checked before TFX is imported.
"""

from __future__ import annotations

import argparse
import os
import time

from pipeline import config as config_lib
from pipeline.commands import (UserError, add_config_arguments, build_config,
                               prepare_imports)

# option dest -> the KubeflowConfig field it sets
_KUBEFLOW_OPTIONS = {'image': 'image', 'pipeline_root': 'pipeline_root',
                     'pod_data': 'data', 'host': 'host',
                     'namespace': 'namespace', 'experiment': 'experiment'}


def add_kubeflow_arguments(parser: argparse.ArgumentParser) -> None:
  """--preset/--set and the options every Kubeflow command takes."""
  add_config_arguments(parser)
  parser.add_argument('--image', metavar='REGISTRY/IMAGE:TAG',
                      help='the image every node runs, built from the '
                      'Dockerfile (sets kubeflow.image)')
  parser.add_argument('--pipeline-root', metavar='URL',
                      help='artifacts of the runs: gs://BUCKET/DIR, s3://... '
                      'or minio://... (sets kubeflow.pipeline_root)')
  parser.add_argument('--data', dest='pod_data', metavar='URL',
                      help='CIFAR-10 as the pods see it, e.g. gs://BUCKET/'
                      'cifar-10-python.tar.gz; nothing is read now (sets '
                      'kubeflow.data; default: data.source)')


def kubeflow_config(args: argparse.Namespace) -> config_lib.PipelineConfig:
  """The preset, then the Kubeflow options, then each --set, validated."""
  options = [f'kubeflow.{field}={getattr(args, dest)}'
             for dest, field in _KUBEFLOW_OPTIONS.items()
             if getattr(args, dest, None) is not None]
  args.overrides = options + list(args.overrides)
  return build_config(args)


def register(commands) -> None:
  parser = commands.add_parser(
      'compile', help='write the Kubeflow Pipelines v2 spec (YAML)',
      description='Compile the same DAG as `run` into a Kubeflow Pipelines v2 '
      'pipeline spec with KubeflowV2DagRunner: both Trainers request GPUs, '
      'every node runs --image, the spec carries --pipeline-root. Nothing is '
      'uploaded or read remotely.')
  add_kubeflow_arguments(parser)
  parser.add_argument('--output', default='pipeline.yaml', metavar='FILE',
                      help='where to write the spec (default ./pipeline.yaml)')
  parser.set_defaults(func=main)


def check_output(path: str) -> None:
  if os.path.isdir(path) or not path.endswith(('.yaml', '.yml')):
    raise UserError(f'--output {path}: name a .yaml file for the spec.')


def main(args: argparse.Namespace) -> int:
  from pipeline import kubeflow
  config = kubeflow_config(args)
  notes = kubeflow.check(config)
  kubeflow.pod_source(config)
  check_output(args.output)
  prepare_imports()
  start = time.time()
  spec = kubeflow.compile_spec(config, args.output)
  print(f'Wrote {args.output}: {len(spec["root"]["dag"]["tasks"])} nodes, '
        f'image {config.kubeflow.image}, pipeline root '
        f'{spec["defaultPipelineRoot"]} ({time.time() - start:.0f} s).')
  print('\n'.join(kubeflow.describe(spec)))
  kubeflow.print_notes(notes)
  return 0
