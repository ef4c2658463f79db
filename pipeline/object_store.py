"""The pipeline root's object store, as the pods must be set up to reach it.

Called by `pipeline/kubeflow.py` when it compiles the spec. TFX's nodes read
and write artifact URIs themselves, through TensorFlow's file systems:

- `gs://` is built into TensorFlow: nothing to add;
- `s3://` (AWS or any S3 API, such as MinIO's) needs tensorflow-io, which the
  pod entrypoint (`pipeline/pod.py`) loads, and its settings as environment
  variables (S3_ENDPOINT, S3_USE_HTTPS, S3_VERIFY_SSL, AWS_REGION), which this
  module puts on every node; the Beam nodes (ExampleGen, StatisticsGen,
  Transform, Evaluators) also write through Beam's own S3 file system, whose
  boto3 client ignores those and reads AWS_ENDPOINT_URL_S3 and
  AWS_DEFAULT_REGION instead, so both are set too; the keys come from a Kubernetes secret, mapped to
  AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY by a kubernetes platform spec
  (the second YAML document, as kfp-kubernetes writes it);
- `minio://BUCKET/...` (KFP's own MinIO) is no file system anywhere: it is
  compiled as `s3://BUCKET/...` against KFP's in-cluster MinIO endpoint and
  its `mlpipeline-minio-artifact` secret.
"""

from __future__ import annotations

import re

from pipeline.config import PipelineConfig

KFP_MINIO_ENDPOINT = 'http://minio-service.kubeflow:9000'  # KFP's in-cluster MinIO
SECRET_KEYS = (('accesskey', 'AWS_ACCESS_KEY_ID'),
               ('secretkey', 'AWS_SECRET_ACCESS_KEY'))  # KFP's MinIO secret keys


def scheme(url: str) -> str:
  found = re.match(r'([a-z0-9]+)://', url)
  return found.group(1) if found else ''


def tfx_url(url: str) -> str:
  """A URL as TFX's nodes address it: minio://X becomes s3://X, others stay."""
  return 's3://' + url[len('minio://'):] if scheme(url) == 'minio' else url


def tfx_root(config: PipelineConfig) -> str:
  """The pipeline root as TFX's nodes address it (minio:// becomes s3://)."""
  return tfx_url(config.kubeflow.pipeline_root)


def endpoint(config: PipelineConfig) -> str:
  """The S3 API URL the pods use; '' for AWS itself (tensorflow-io's default)."""
  k = config.kubeflow
  if k.s3_endpoint:
    return k.s3_endpoint
  return KFP_MINIO_ENDPOINT if scheme(k.pipeline_root) == 'minio' else ''


def pod_env(config: PipelineConfig) -> list[dict]:
  """Environment variables of every node ([] unless the root is S3)."""
  if scheme(tfx_root(config)) != 's3':
    return []
  url = endpoint(config)
  region = config.kubeflow.s3_region
  env = {'AWS_REGION': region, 'AWS_DEFAULT_REGION': region}  # TF-io, botocore
  if url:
    env.update(S3_ENDPOINT=url, S3_USE_HTTPS=str(int(url.startswith('https://'))),
               S3_VERIFY_SSL=str(int(url.startswith('https://'))),
               AWS_ENDPOINT_URL_S3=url)  # botocore: Beam's S3 file system
  return [{'name': name, 'value': value} for name, value in sorted(env.items())]


def platform_spec(config: PipelineConfig, executor_labels: list[str]) -> dict | None:
  """The kubernetes platform spec mapping the S3 secret's keys to env, or None."""
  secret = config.kubeflow.s3_secret
  if scheme(tfx_root(config)) != 's3' or not secret:
    return None
  mapping = [{'secretName': secret, 'keyToEnv': [
      {'secretKey': key, 'envVar': var} for key, var in SECRET_KEYS]}]
  return {'platforms': {'kubernetes': {'deploymentSpec': {'executors': {
      label: {'secretAsEnv': mapping} for label in sorted(executor_labels)}}}}}


def notes(config: PipelineConfig) -> list[str]:
  """What the user should know about this root, one line each."""
  k = config.kubeflow
  kind = scheme(k.pipeline_root)
  if kind == 'gs':
    return []
  lines = []
  if kind == 'minio':
    lines.append(f'note: TFX cannot read minio:// URLs; the nodes use '
                 f'{tfx_root(config)} through the S3 API at {endpoint(config)} '
                 '(kubeflow.s3_endpoint). KFP\'s launcher must accept an s3:// '
                 'root for that endpoint (its kfp-launcher ConfigMap).')
  secret = (f'the keys come from the secret {k.s3_secret} (accesskey, secretkey) '
            'in the run\'s namespace' if k.s3_secret else
            'kubeflow.s3_secret is empty, so the pods must already hold '
            'AWS credentials (e.g. IRSA)')
  lines.append(f'note: S3 for every node: {secret}; the image needs '
               'tensorflow-io (the Dockerfile installs it).')
  return lines
