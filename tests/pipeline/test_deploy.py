"""`cifar10-tfx deploy` against a small KFP v2beta1 API on 127.0.0.1.

The fake implements what kfp.Client calls (healthz, list/upload pipelines and
versions, experiments, runs) and records every request; the tests assert what
it received. Only loopback addresses; each server answers a bounded number of
requests. A closed port gives the refused-connection message.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import io
import json
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from pipeline import cli

API = '/apis/v2beta1'
IMAGE = 'registry.example.com/ml/cifar10-tfx:deploy-1'
PIPELINE_ROOT = 'gs://deploy-bucket/root'
MAX_REQUESTS = 30


class FakeKfp:
  """The KFP API's state and the requests it was sent."""

  def __init__(self, pipelines: dict | None = None, status: int = 0):
    self.pipelines = dict(pipelines or {})  # name -> id
    self.status = status  # answer every request with this error, if set
    self.requests, self.uploads, self.experiments = [], [], {}
    self.versions: dict[str, list[str]] = {p: ['v0'] for p in self.pipelines.values()}

  def answer(self, method, path, query, headers, body):
    self.requests.append({'method': method, 'path': path, 'query': query,
                          'headers': headers, 'body': body})
    if len(self.requests) > MAX_REQUESTS:
      return 429, {'message': 'too many requests'}
    if self.status:
      return self.status, {'error': 'Unauthorized', 'code': 16,
                           'message': 'Unauthorized: no valid token'}
    route = (method, path)
    if route == ('GET', f'{API}/healthz'):
      return 200, {'multi_user': False, 'commit_sha': 'fake'}
    if route == ('GET', f'{API}/pipelines'):
      wanted = json.loads(query['filter'])['predicates'][0]['stringValue']
      found = [{'pipeline_id': pid, 'display_name': name}
               for name, pid in self.pipelines.items() if name == wanted]
      return 200, {'pipelines': found, 'total_size': len(found)} if found else {}
    if route == ('POST', f'{API}/pipelines/upload'):
      pid = f'p{len(self.pipelines) + 1}'
      self.pipelines[query['name']] = pid
      self.versions[pid] = [f'{pid}-v1']
      self.uploads.append(self._file(headers, body))
      return 200, {'pipeline_id': pid, 'display_name': query['name']}
    if route == ('POST', f'{API}/pipelines/upload_version'):
      pid = query['pipelineid']
      self.versions[pid].append(f'{pid}-v{len(self.versions[pid]) + 1}')
      self.uploads.append(self._file(headers, body))
      return 200, {'pipeline_id': pid, 'pipeline_version_id': self.versions[pid][-1],
                   'display_name': query['name']}
    if method == 'GET' and path.startswith(f'{API}/pipelines/'):
      pid = path.split('/')[4]
      return 200, {'pipeline_versions': [
          {'pipeline_id': pid, 'pipeline_version_id': self.versions[pid][-1]}]}
    if route == ('GET', f'{API}/experiments'):
      wanted = json.loads(query['filter'])['predicates'][0]['stringValue']
      found = [e for e in self.experiments.values() if e['display_name'] == wanted]
      return 200, {'experiments': found} if found else {}
    if route == ('POST', f'{API}/experiments'):
      experiment = {'experiment_id': f'e{len(self.experiments) + 1}',
                    'display_name': json.loads(body)['display_name']}
      self.experiments[experiment['experiment_id']] = experiment
      return 200, experiment
    if route == ('POST', f'{API}/runs'):
      return 200, {**json.loads(body), 'run_id': 'run-1', 'state': 'PENDING'}
    return 404, {'message': f'no route {method} {path}'}

  @staticmethod
  def _file(headers, body) -> dict:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f'Content-Type: {headers["content-type"]}\r\n\r\n'.encode() + body)
    (part,) = list(message.iter_parts())
    return {'field': part.get_param('name', header='content-disposition'),
            'filename': part.get_filename(),
            'spec': yaml.safe_load(part.get_payload(decode=True))}

  def sent(self, method: str, path: str) -> list[dict]:
    return [r for r in self.requests if (r['method'], r['path']) == (method, path)]


@contextlib.contextmanager
def serving(fake: FakeKfp):
  class Handler(BaseHTTPRequestHandler):
    def _reply(self):
      url = urllib.parse.urlsplit(self.path)
      length = int(self.headers.get('content-length') or 0)
      status, payload = fake.answer(
          self.command, url.path, dict(urllib.parse.parse_qsl(url.query)),
          {k.lower(): v for k, v in self.headers.items()},
          self.rfile.read(length) if length else b'')
      data = json.dumps(payload).encode()
      self.send_response(status)
      self.send_header('Content-Type', 'application/json')
      self.send_header('Content-Length', str(len(data)))
      self.end_headers()
      self.wfile.write(data)
    do_GET = do_POST = _reply
    def log_message(self, *args):
      pass
  server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    yield f'http://127.0.0.1:{server.server_address[1]}'
  finally:
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def isolated_kfp(monkeypatch, tmp_path):
  """No KF_PIPELINES_* from the caller, no ~/.config/kfp context file."""
  from kfp.client import client
  for name in ('KF_PIPELINES_ENDPOINT', 'KF_PIPELINES_UI_ENDPOINT',
               'KF_PIPELINES_SA_TOKEN_PATH', 'KF_PIPELINES_IAP_OAUTH2_CLIENT_ID'):
    monkeypatch.delenv(name, raising=False)
  monkeypatch.setattr(client.Client, '_LOCAL_KFP_CONTEXT',
                      str(tmp_path / 'kfp-context.json'))
  token = tmp_path / 'token'
  token.write_text('test-token-123\n')
  monkeypatch.setenv('KF_PIPELINES_SA_TOKEN_PATH', str(token))


def deploy(host: str, *extra: str) -> tuple[int, str, str]:
  out, err = io.StringIO(), io.StringIO()
  args = ['deploy', '--host', host, '--preset', 'quick', '--image', IMAGE,
          '--pipeline-root', PIPELINE_ROOT, '--data',
          'gs://deploy-bucket/cifar-10-python.tar.gz', *extra]
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    code = cli.main(args)
  return code, out.getvalue(), err.getvalue()


def test_new_pipeline_is_uploaded_and_run(tmp_path):
  fake = FakeKfp()
  with serving(fake) as host:
    code, out, err = deploy(host, '--run', '--experiment', 'nightly',
                            '--output', str(tmp_path / 'kept.yaml'))
  assert code == 0, err
  assert [(r['method'], r['path']) for r in fake.requests] == [
      ('GET', f'{API}/healthz'), ('GET', f'{API}/pipelines'),
      ('POST', f'{API}/pipelines/upload'), ('GET', f'{API}/pipelines/p1/versions'),
      ('GET', f'{API}/experiments'), ('POST', f'{API}/experiments'),
      ('POST', f'{API}/runs')]
  assert all(r['headers'].get('authorization') == 'Bearer test-token-123'
             for r in fake.requests)
  (lookup,) = fake.sent('GET', f'{API}/pipelines')
  assert json.loads(lookup['query']['filter'])['predicates'][0][
      'stringValue'] == 'cifar10-tfx'
  (upload,) = fake.sent('POST', f'{API}/pipelines/upload')
  assert upload['query']['name'] == 'cifar10-tfx'
  (sent,) = fake.uploads
  assert sent['field'] == 'uploadfile' and sent['filename'].endswith('.yaml')
  assert sent['spec'] == yaml.safe_load((tmp_path / 'kept.yaml').read_text())
  assert sent['spec']['defaultPipelineRoot'] == PIPELINE_ROOT
  assert {e['container']['image'] for e in sent['spec']['deploymentSpec'][
      'executors'].values()} == {IMAGE}
  assert not fake.sent('POST', f'{API}/pipelines/upload_version')
  (create,) = fake.sent('POST', f'{API}/experiments')
  assert json.loads(create['body'])['display_name'] == 'nightly'
  (run,) = fake.sent('POST', f'{API}/runs')
  body = json.loads(run['body'])
  assert body['experiment_id'] == 'e1'
  assert body['pipeline_version_reference'] == {
      'pipeline_id': 'p1', 'pipeline_version_id': 'p1-v1'}
  assert body['display_name'].startswith('cifar10-tfx ')
  # KFP's backend ignores the spec's defaultPipelineRoot: the run carries it
  assert body['runtime_config']['pipeline_root'] == PIPELINE_ROOT
  assert sent['spec']['schemaVersion'] == '2.1.0'
  assert f'{host}/#/runs/details/run-1' in out
  assert f'{host}/#/pipelines/details/p1/version/p1-v1' in out
  assert 'Trainer_vgg16        1 x nvidia.com/gpu' in out


def test_existing_pipeline_gets_a_new_version_and_no_run():
  fake = FakeKfp(pipelines={'cifar10-tfx': 'p7'})
  with serving(fake) as host:
    code, out, err = deploy(host)
  assert code == 0, err
  assert not fake.sent('POST', f'{API}/pipelines/upload')
  (upload,) = fake.sent('POST', f'{API}/pipelines/upload_version')
  assert upload['query']['pipelineid'] == 'p7'
  assert upload['query']['name'].startswith('cifar10-tfx-')
  assert 'image ' + IMAGE in upload['query']['description']
  assert fake.uploads[0]['spec']['defaultPipelineRoot'] == PIPELINE_ROOT
  assert not fake.sent('POST', f'{API}/runs')
  assert not fake.sent('POST', f'{API}/experiments')
  assert 'a new version of cifar10-tfx' in out and '/p7/version/p7-v2' in out


def test_unauthorized_ends_with_one_message_before_compiling():
  fake = FakeKfp(status=401)
  start = time.time()
  with serving(fake) as host:
    code, out, err = deploy(host, '--run')
  assert code == 1
  assert len(fake.requests) == 1  # one health check, no retries, no upload
  assert 'HTTP 401' in err and 'authenticate' in err
  assert 'Traceback' not in err and len(err.strip().splitlines()) == 1
  assert 'Compiled' not in out and time.time() - start < 10


def test_refused_connection_ends_with_one_message():
  with socket.socket() as probe:  # a port nothing listens on
    probe.bind(('127.0.0.1', 0))
    port = probe.getsockname()[1]
  start = time.time()
  code, out, err = deploy(f'http://127.0.0.1:{port}', '--run')
  assert code == 1
  assert f'Cannot reach Kubeflow Pipelines at http://127.0.0.1:{port}' in err
  assert 'Connection refused' in err
  assert 'Traceback' not in err and len(err.strip().splitlines()) == 1
  assert 'Compiled' not in out and time.time() - start < 10


def test_placeholder_image_is_not_uploaded():
  code, out, err = deploy('http://127.0.0.1:9', '--set',
                          'kubeflow.image=ghcr.io/your-org/cifar10-tfx:latest')
  assert code == 2 and 'placeholder' in err and 'Traceback' not in err
