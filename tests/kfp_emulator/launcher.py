"""KFP 2.x's launcher (backend/src/v2/component/launcher_v2.go), for one task.

Called by `tests/kfp_emulator/__init__.py` (`run`) for every task the cache
does not answer. It builds the command line as the launcher does
(`compileCmdAndArgs`, `getPlaceholders`, `addDefaultParams`), runs the
container's own command, args and env as a subprocess, then reads the
executor's output file (`getExecutorOutputFile`) and merges what the
executor wrote into the provisioned output artifacts (`mergeRuntimeArtifacts`)
and output parameters (`collectOutputParameters`).

Where a pod and this machine differ, the difference is explicit here: the
project folder stands in for the image's WORKDIR (a parameter naming a path
under `image_root` is given the same path under `workdir`, as a bind mount
would), and the launcher's local mirror of object-store URIs (/s3/..., /gcs/...,
/minio/...) lies under `local_root`.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import time

_SCHEMES = {'gs://': '/gcs/', 'minio://': '/minio/', 's3://': '/s3/'}


def local_path_for_uri(uri: str) -> str:
  """launcher_v2.go LocalPathForURI."""
  for scheme, local in _SCHEMES.items():
    if uri.startswith(scheme):
      return local + uri[len(scheme):]
  raise ValueError(f'failed to generate local path for URI {uri}: '
                   'unsupported storage scheme')


def _text(value) -> str:
  if isinstance(value, str):
    return value
  if isinstance(value, bool):
    return str(value).lower()
  if isinstance(value, (int, float)):  # Go: FormatFloat(v, 'f', -1, 64)
    return str(int(value)) if float(value).is_integer() else repr(float(value))
  return json.dumps(value)


def placeholders(executor_input: dict, local_root: str) -> dict:
  """launcher_v2.go getPlaceholders (artifact paths under `local_root`)."""
  found = {}
  inputs, outputs = executor_input['inputs'], executor_input['outputs']
  for name, listed in inputs.get('artifacts', {}).items():
    uri = listed['artifacts'][0]['uri']
    found[f"{{{{$.inputs.artifacts['{name}'].uri}}}}"] = uri
    found[f"{{{{$.inputs.artifacts['{name}'].path}}}}"] = (
        local_root + local_path_for_uri(uri))
  for name, listed in outputs.get('artifacts', {}).items():
    uri = listed['artifacts'][0]['uri']
    found[f"{{{{$.outputs.artifacts['{name}'].uri}}}}"] = uri
    found[f"{{{{$.outputs.artifacts['{name}'].path}}}}"] = (
        local_root + local_path_for_uri(uri))
  for name, value in inputs.get('parameterValues', {}).items():
    found[f"{{{{$.inputs.parameters['{name}']}}}}"] = _text(value)
  for name, parameter in outputs.get('parameters', {}).items():
    found[f"{{{{$.outputs.parameters['{name}'].output_file}}}}"] = (
        parameter['outputFile'])
  return found


def command_line(box: dict, executor_input: dict, local_root: str) -> list[str]:
  """launcher_v2.go compileCmdAndArgs: `{{$}}` is the executor input's JSON;
  the launcher gets command[0] as its command (where only `{{$}}` is
  replaced) and the rest of the command, then the args, as its args."""
  whole = json.dumps(executor_input, separators=(',', ':'))
  found = placeholders(executor_input, local_root)
  words = list(box.get('command', [])) + list(box.get('args', []))
  if not words:
    raise ValueError('a container without command relies on the image '
                     'entrypoint, which this emulation has not')
  compiled = [words[0].replace('{{$}}', whole)]
  for word in words[1:]:
    word = word.replace('{{$}}', whole)
    for key, value in found.items():
      word = word.replace(key, value)
    compiled.append(word)
  left = [w for w in compiled if re.search(r'\{\{\$[.\w\[\]\'"]*\}\}', w)]
  if left:
    raise ValueError(f'unsubstituted placeholders in {left}')
  return compiled


def with_defaults(executor_input: dict, component: dict) -> dict:
  """launcher_v2.go addDefaultParams: a copy with the components' defaults."""
  result = copy.deepcopy(executor_input)
  values = result['inputs'].setdefault('parameterValues', {})
  for name, definition in component.get('inputDefinitions', {}).get(
      'parameters', {}).items():
    if name not in values and 'defaultValue' in definition:
      values[name] = definition['defaultValue']
  return result


def in_image(executor_input: dict, image_root: str, workdir: str) -> dict:
  """The executor input as the pod's files see it: `image_root` is `workdir`."""
  result = copy.deepcopy(executor_input)
  values = result['inputs'].get('parameterValues', {})
  for name, value in values.items():
    if isinstance(value, str) and value.startswith(image_root.rstrip('/') + '/'):
      values[name] = workdir.rstrip('/') + value[len(image_root.rstrip('/')):]
  return result


def environment(box: dict, secrets_as_env: list, secrets: dict) -> dict:
  """The pod's environment: a bare base, the container's env, then each
  secret key mapped by the kubernetes platform spec (secretAsEnv)."""
  env = {'PATH': os.path.dirname(sys.executable) + os.pathsep + '/usr/bin:/bin',
         'HOME': os.environ.get('HOME', '/root'), 'LANG': 'C.UTF-8'}
  env.update({e['name']: e['value'] for e in box.get('env', [])})
  for mapping in secrets_as_env:
    secret = secrets[mapping['secretName']]
    for pair in mapping['keyToEnv']:
      env[pair['envVar']] = secret[pair['secretKey']]
  return env


def merge_output(outputs: dict, output_file: str) -> dict:
  """launcher_v2.go getExecutorOutputFile + mergeRuntimeArtifacts: the
  executor's URIs and metadata over the provisioned ones; returns the
  ExecutorOutput's parameterValues (collectOutputParameters reads the
  rest from their files)."""
  written = {}
  if os.path.exists(output_file):
    with open(output_file) as f:
      written = json.load(f)
  for name, listed in outputs.get('artifacts', {}).items():
    mine = listed['artifacts'][0]
    theirs = written.get('artifacts', {}).get(name, {}).get('artifacts', [])
    if theirs:
      if theirs[0].get('uri'):
        mine['uri'] = theirs[0]['uri']
      mine['metadata'] = {**(mine.get('metadata') or {}),
                          **(theirs[0].get('metadata') or {})}
  values = dict(written.get('parameterValues', {}))
  for name, parameter in outputs.get('parameters', {}).items():
    if name not in values:
      with open(parameter['outputFile']) as f:
        values[name] = f.read()
  return values


def launch(*, executor_input: dict, component: dict, box: dict,
           secrets_as_env: list, secrets: dict, workdir: str, image_root: str,
           local_root: str, log_path: str, timeout: float) -> tuple[dict, float]:
  """Runs the task's container; returns (output parameter values, seconds).
  Raises RuntimeError with the log's tail when the command fails."""
  for listed in executor_input['outputs'].get('artifacts', {}).values():
    local = local_root + local_path_for_uri(listed['artifacts'][0]['uri'])
    os.makedirs(os.path.dirname(local), exist_ok=True)  # prepareOutputFolders
  os.makedirs(os.path.dirname(executor_input['outputs']['outputFile']),
              exist_ok=True)
  argv = command_line(box, in_image(with_defaults(executor_input, component),
                                    image_root, workdir), local_root)
  start = time.time()
  with open(log_path, 'w') as log:
    done = subprocess.run(argv, cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
                          env=environment(box, secrets_as_env, secrets),
                          timeout=timeout, check=False)
  seconds = time.time() - start
  if done.returncode:
    with open(log_path, errors='replace') as f:
      tail = f.read()[-4000:]
    raise RuntimeError(f'exit status {done.returncode}; log {log_path}:\n{tail}')
  for listed in executor_input['outputs'].get('artifacts', {}).values():
    local = local_root + local_path_for_uri(listed['artifacts'][0]['uri'])
    if os.path.exists(local):  # uploadOutputArtifacts would copy it up
      raise RuntimeError(f'the executor wrote {local}: uploading a local '
                         'output is not emulated')
  return merge_output(executor_input['outputs'],
                      executor_input['outputs']['outputFile']), seconds
