"""`cifar10-tfx deploy`: compile, upload to Kubeflow Pipelines, optionally run.

Called by `pipeline/cli.py`. Talks to the KFP API (v2beta1) through the KFP
SDK's `kfp.Client`, so authentication follows its conventions: a token file
named by KF_PIPELINES_SA_TOKEN_PATH (passed on as kfp's
ServiceAccountTokenVolumeCredentials, also outside the cluster), IAP client
ids (KF_PIPELINES_IAP_OAUTH2_CLIENT_ID), the cookie or header of kfp's context
file, or, with no host, the kube config or the pod's service account. The API
is reached before the pipeline is compiled, so a wrong host or a refused token
costs a second, not the minute of TFX imports. Every error from the API ends
as one `UserError`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import tempfile
import time

from pipeline.commands import UserError, prepare_imports
from pipeline.commands.compile import (add_kubeflow_arguments, check_output,
                                      kubeflow_config)
from pipeline.config import KubeflowConfig

_TOKEN_PATH_ENV = 'KF_PIPELINES_SA_TOKEN_PATH'  # kfp's name for a token file
_PORT_FORWARD = ('kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80, '
                 'then --host http://localhost:8080')


def register(commands) -> None:
  parser = commands.add_parser(
      'deploy', help='compile, upload to Kubeflow Pipelines, optionally run',
      description='Compile the pipeline (as `compile`), upload it to Kubeflow '
      'Pipelines (a new version when a pipeline of that name exists) and, with '
      '--run, start a run and print its URL. Authentication follows kfp.Client: '
      'KF_PIPELINES_* variables, the kube config, or the pod service account.')
  add_kubeflow_arguments(parser)
  parser.add_argument('--host', metavar='URL',
                      help='the KFP API, e.g. https://kfp.example.com (sets '
                      'kubeflow.host; default: KF_PIPELINES_ENDPOINT, then the '
                      'kube config)')
  parser.add_argument('--namespace', metavar='NS',
                      help='your namespace on a multi-user cluster (sets '
                      'kubeflow.namespace; default kubeflow)')
  parser.add_argument('--experiment', metavar='NAME',
                      help='the experiment a run goes to, created when missing '
                      '(sets kubeflow.experiment)')
  parser.add_argument('--run', action='store_true',
                      help='start a run of the uploaded version')
  parser.add_argument('--output', metavar='FILE.yaml',
                      help='keep the compiled spec here (default: a temporary '
                      'file)')
  parser.set_defaults(func=main)


def _where(k: KubeflowConfig) -> str:
  return k.host or os.environ.get('KF_PIPELINES_ENDPOINT') or (
      'the endpoint of your kube config')


def _reason(error: BaseException) -> str:
  """The innermost reason of a urllib3 error, without object addresses."""
  while getattr(error, 'reason', None) is not None and error.reason is not error:
    if not isinstance(error.reason, BaseException):
      break
    error = error.reason
  return re.sub(r'^<[^>]*>: ', '', str(error)) or type(error).__name__


@contextlib.contextmanager
def _api(where: str, doing: str):
  """Turns what the KFP client raises while `doing` into one UserError."""
  import kfp_server_api
  import urllib3
  try:
    with contextlib.redirect_stdout(io.StringIO()):  # kfp prints its own links
      yield
  except kfp_server_api.ApiException as error:
    if error.status in (401, 403):
      raise UserError(
          f'Kubeflow Pipelines at {where} refused the request while {doing} '
          f'(HTTP {error.status} {error.reason}): authenticate as kfp.Client '
          'expects, e.g. KF_PIPELINES_SA_TOKEN_PATH or an IAP client id '
          '(KF_PIPELINES_IAP_OAUTH2_CLIENT_ID), or a kube config with access; '
          'on a multi-user cluster pass --namespace.') from None
    if not error.status:
      raise UserError(f'Cannot reach Kubeflow Pipelines at {where} '
                      f'({error.reason}).') from None
    try:
      detail = json.loads(error.body or '{}')
      detail = detail.get('message') or detail.get('error') or ''
    except (ValueError, AttributeError):
      detail = str(error.body or '')[:200]
    raise UserError(f'Kubeflow Pipelines at {where} answered HTTP '
                    f'{error.status} {error.reason} while {doing}'
                    f'{": " + detail if detail else "."}') from None
  except (urllib3.exceptions.HTTPError, OSError) as error:
    raise UserError(f'Cannot reach Kubeflow Pipelines at {where} while {doing} '
                    f'({_reason(error)}). Check --host; without an ingress: '
                    f'{_PORT_FORWARD}.') from None
  except ValueError as error:  # the client's own checks, e.g. duplicate names
    raise UserError(f'Kubeflow Pipelines at {where}: {error}') from None


def connect(k: KubeflowConfig):
  """A kfp.Client for `k`, after one successful health check."""
  import kfp

  class Client(kfp.Client):
    health = None

    def get_kfp_healthz(self, sleep_duration: int = 5):
      del sleep_duration  # one try: kfp retries 5 times, 5 s apart
      self.health = self._healthz_api.get_healthz()
      return self.health

  credentials = None
  token_path = os.environ.get(_TOKEN_PATH_ENV)
  if token_path:  # kfp reads it by itself only inside the cluster
    if not os.path.isfile(token_path):
      raise UserError(f'{_TOKEN_PATH_ENV}={token_path}: no such file; point '
                      'it at a file holding a token for the KFP API.')
    credentials = kfp.client.ServiceAccountTokenVolumeCredentials(token_path)
  with _api(_where(k), 'checking its health'):
    client = Client(host=k.host or None, namespace=k.namespace,
                    credentials=credentials)
    if client.health is None:  # the constructor asks only in some set-ups
      client.get_kfp_healthz()
  return client


def upload(client, where: str, path: str, name: str, version: str,
           description: str) -> tuple[str, str, bool]:
  """(pipeline id, version id, whether the pipeline is new) of the upload."""
  with _api(where, f'looking up pipeline {name}'):
    pipeline_id = client.get_pipeline_id(name)
  if pipeline_id:
    with _api(where, f'uploading a version of pipeline {name}'):
      uploaded = client.upload_pipeline_version(
          path, pipeline_version_name=version, pipeline_id=pipeline_id,
          description=description)
    return pipeline_id, uploaded.pipeline_version_id, False
  with _api(where, f'uploading pipeline {name}'):
    pipeline_id = client.upload_pipeline(
        path, pipeline_name=name, description=description).pipeline_id
    versions = client.list_pipeline_versions(
        pipeline_id, page_size=1, sort_by='created_at desc').pipeline_versions
  if not versions:
    raise UserError(f'Kubeflow Pipelines at {where} made pipeline {name} '
                    f'({pipeline_id}) but lists no version of it.')
  return pipeline_id, versions[0].pipeline_version_id, True


def start_run(client, where: str, experiment: str, run_name: str,
              pipeline_id: str, version_id: str, pipeline_root: str) -> str:
  """Starts a run of the version in `experiment`; returns the run id.

  The root goes into the run's runtime config: KFP's backend ignores the
  spec's defaultPipelineRoot (its root DAG driver takes the run's, else the
  kfp-launcher ConfigMap's, minio://mlpipeline/v2/artifacts by default).
  Caching follows each task's cachingOptions in the spec: kfp.Client
  ignores `enable_caching` for a run of an uploaded version.
  """
  with _api(where, f'finding or creating experiment {experiment}'):
    experiment_id = client.create_experiment(experiment).experiment_id
  with _api(where, 'starting the run'):
    return client.run_pipeline(experiment_id, run_name, pipeline_id=pipeline_id,
                               version_id=version_id,
                               pipeline_root=pipeline_root).run_id


def main(args: argparse.Namespace) -> int:
  from pipeline import kubeflow
  config = kubeflow_config(args)
  notes = kubeflow.check(config, for_upload=True)
  kubeflow.pod_source(config)
  if args.output:
    check_output(args.output)
  config.kubeflow.host = config.kubeflow.host.rstrip('/')
  prepare_imports()
  k, where = config.kubeflow, _where(config.kubeflow)
  client = connect(k)
  print(f'Kubeflow Pipelines at {where}: reachable.', flush=True)
  with tempfile.TemporaryDirectory(prefix='cifar10-tfx-') as tmp:
    path = args.output or os.path.join(tmp, 'pipeline.yaml')
    spec = kubeflow.compile_spec(config, path)
    print(f'Compiled {len(spec["root"]["dag"]["tasks"])} nodes (image '
          f'{k.image}, pipeline root {k.pipeline_root})'
          f'{" into " + path if args.output else ""}:')
    print('\n'.join(kubeflow.describe(spec)), flush=True)
    digest = kubeflow.spec_digest(path)
    stamp = time.strftime('%Y%m%d-%H%M%S', time.gmtime())
    pipeline_id, version_id, new = upload(
        client, where, path, config.name, f'{config.name}-{stamp}-{digest}',
        f'preset {config.preset}, image {k.image}, spec sha256 {digest}')
  ui = client._get_url_prefix()  # pylint: disable=protected-access
  print(f'Uploaded {"new pipeline" if new else "a new version of"} '
        f'{config.name}: {ui}/#/pipelines/details/{pipeline_id}/version/'
        f'{version_id}')
  if args.run:
    run_id = start_run(client, where, k.experiment, f'{config.name} {stamp}',
                       pipeline_id, version_id, spec['defaultPipelineRoot'])
    print(f'Run started in experiment {k.experiment}: '
          f'{ui}/#/runs/details/{run_id}')
  kubeflow.print_notes(notes)
  return 0
