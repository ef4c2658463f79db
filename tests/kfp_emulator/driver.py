"""KFP 2.x's driver, as far as a compiled TFX spec exercises it.

Called by `tests/kfp_emulator/__init__.py` (`run`), once per task. Each
function names the kubeflow/pipelines source it follows
(backend/src/v2/driver/resolve.go, driver.go, cache.go;
backend/src/v2/metadata/converter.go, client.go; backend/src/v2/cacheutils).
What the spec must satisfy fails here as `SpecError`, with the driver's own
wording where it has one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid

# ParameterType -> the JSON kinds its values may have (resolve.go, the
# parameter type check after resolution; bool is no number there).
_KINDS = {'NUMBER_INTEGER': (int, float), 'NUMBER_DOUBLE': (int, float),
          'BOOLEAN': (bool,), 'LIST': (list,), 'STRUCT': (dict,)}
# Placeholders the driver resolves in a constant (resolve.go).
JOB_PLACEHOLDERS = ('{{$.pipeline_job_name}}', '{{$.pipeline_job_resource_name}}',
                    '{{$.pipeline_job_uuid}}', '{{$.pipeline_task_name}}',
                    '{{$.pipeline_task_uuid}}')


class SpecError(AssertionError):
  """What a KFP 2.x driver would refuse in the spec."""


@dataclasses.dataclass
class Artifact:
  """An output artifact as MLMD holds it and the driver hands it on."""
  id: int
  uri: str
  schema: str  # its type's instanceSchema
  metadata: dict

  def runtime(self) -> dict:
    """As an input RuntimeArtifact (converter.go toRuntimeArtifact; client.go
    OutputArtifact.ToRuntimeArtifact): name = the MLMD id."""
    return {'name': str(self.id), 'uri': self.uri, 'metadata': self.metadata,
            'type': {'instanceSchema': self.schema}}


def mlmd_value(value):
  """A metadata value after MLMD (converter.go StructValueToMLMDValue, then
  toRuntimeArtifact): numbers become doubles, bools 0/1, lists and structs
  are wrapped."""
  if isinstance(value, bool):
    return int(value)
  if isinstance(value, (int, float)):
    return float(value)
  if isinstance(value, str):
    return value
  if isinstance(value, list):
    return {'list': value}
  if isinstance(value, dict):
    return {'struct': value}
  raise SpecError(f'unknown/unsupported value type {type(value).__name__} '
                  'in artifact metadata')


class Metadata:
  """Stands in for the MLMD server and KFP's cache table."""

  def __init__(self):
    self.artifacts: list[Artifact] = []
    self.cache: dict[str, dict[str, Artifact]] = {}

  def record(self, output_name: str, artifact: dict) -> Artifact:
    """client.go RecordArtifact: metadata as custom properties, plus
    display_name (the output's name) when the executor set none."""
    metadata = {k: mlmd_value(v) for k, v in
                (artifact.get('metadata') or {}).items()}
    metadata.setdefault('display_name', output_name)
    recorded = Artifact(len(self.artifacts) + 1, artifact['uri'],
                        artifact['type']['instanceSchema'], metadata)
    self.artifacts.append(recorded)
    return recorded


def component(spec: dict, task: str) -> dict:
  return spec['components'][spec['root']['dag']['tasks'][task]['componentRef']['name']]


def container(spec: dict, task: str) -> dict:
  label = component(spec, task)['executorLabel']
  return spec['deploymentSpec']['executors'][label]['container']


def task_order(spec: dict) -> list[str]:
  """The tasks in an order Argo could run them: each after its dependentTasks
  and the producers of its input artifacts (ties by name)."""
  tasks = spec['root']['dag']['tasks']
  needs = {name: set(body.get('dependentTasks', [])) | {
      a['taskOutputArtifact']['producerTask']
      for a in body.get('inputs', {}).get('artifacts', {}).values()
      if 'taskOutputArtifact' in a} for name, body in tasks.items()}
  order = []
  while needs:
    ready = sorted(n for n, deps in needs.items() if deps <= set(order))
    if not ready:
      raise SpecError(f'cycle or unknown task among {sorted(needs)}')
    order.append(ready[0])
    del needs[ready[0]]
  return order


def _typed(task: str, name: str, kind: str, value):
  """resolve.go: a STRING parameter takes any value as its JSON text; other
  types must match."""
  if kind == 'STRING':
    return value if isinstance(value, str) else json.dumps(value)
  allowed = _KINDS.get(kind)
  if allowed is None:
    raise SpecError(f'{task}: input parameter {name!r} has parameterType {kind!r}')
  if value is None:
    raise SpecError(f'{task}: got null for input parameter {name!r}')
  if not isinstance(value, allowed) or (bool not in allowed and isinstance(value, bool)):
    raise SpecError(f'{task}: input parameter {name!r} type mismatch: expect '
                    f'{kind}, got {type(value).__name__}')
  return value


def resolve_parameters(spec: dict, task: str, job: dict) -> dict:
  """resolve.go resolveInputs for parameters: only runtimeValue.constant;
  each checked against the component's parameterType."""
  body = spec['root']['dag']['tasks'][task]
  definitions = component(spec, task).get('inputDefinitions', {}).get('parameters', {})
  values = {}
  for name, param in body.get('inputs', {}).get('parameters', {}).items():
    if set(param) != {'runtimeValue'}:
      raise SpecError(f'{task}.{name}: parameter spec of type {sorted(param)} '
                      'not implemented yet (only runtimeValue in this emulation)')
    runtime = param['runtimeValue']
    if set(runtime) != {'constant'}:
      raise SpecError(f'{task}.{name}: param runtime value spec of type '
                      f'{sorted(runtime)} not implemented (KFP 2.x reads '
                      'runtimeValue.constant only)')
    value = runtime['constant']
    values[name] = job.get(value, value) if isinstance(value, str) else value
  for name, definition in definitions.items():
    if 'parameterType' not in definition:
      raise SpecError(f'{task}: input {name!r} has no parameterType '
                      f'({sorted(definition)}): a schema 2.0.0 definition')
    if name in values:
      values[name] = _typed(task, name, definition['parameterType'], values[name])
    elif not definition.get('isOptional') and 'defaultValue' not in definition:
      raise SpecError(f'{task}: neither value nor default value provided for '
                      f'non-optional parameter {name!r}')
  return values


def resolve_artifacts(spec: dict, task: str, produced: dict) -> dict:
  """resolve.go resolveInputArtifact: taskOutputArtifact from the producer's
  recorded outputs."""
  artifacts = {}
  inputs = spec['root']['dag']['tasks'][task].get('inputs', {})
  for name, source in inputs.get('artifacts', {}).items():
    if set(source) != {'taskOutputArtifact'}:
      raise SpecError(f'{task}.{name}: artifact spec of type {sorted(source)} '
                      'not implemented in this emulation')
    ref = source['taskOutputArtifact']
    artifact = produced[ref['producerTask']][ref['outputArtifactKey']]
    artifacts[name] = {'artifacts': [artifact.runtime()]}
  return artifacts


def output_uri(root: str, *paths: str) -> str:
  """metadata/client.go GenerateOutputURI (no query string here)."""
  return root.rstrip('/') + '/' + '/'.join(p.strip('/') for p in paths)


def provision_outputs(spec: dict, task: str, run_root: str) -> tuple[dict, str]:
  """driver.go provisionOutputs: (executor input outputs, the task root URI).
  The output file's local path is filled in by the launcher."""
  task_root = output_uri(run_root, task, str(uuid.uuid4()))
  definitions = component(spec, task).get('outputDefinitions', {})
  outputs = {'artifacts': {
      name: {'artifacts': [{'name': name, 'uri': output_uri(task_root, name),
                            'type': d['artifactType'],
                            'metadata': d.get('metadata', {})}]}
      for name, d in definitions.get('artifacts', {}).items()}}
  if definitions.get('parameters'):
    outputs['parameters'] = {name: {'outputFile': f'/tmp/kfp/outputs/{name}'}
                             for name in definitions['parameters']}
  return outputs, task_root


def fingerprint(pipeline: str, executor_input: dict, box: dict) -> str:
  """cache.go getFingerPrint / cacheutils GenerateCacheKey: input parameter
  values, input artifact names (MLMD ids), output specs without URIs,
  command and args, image; looked up per pipeline name."""
  outputs = executor_input['outputs']
  key = {
      'pipeline': pipeline,
      'inputArtifactNames': {
          name: [a['name'] for a in listed['artifacts']]
          for name, listed in executor_input['inputs']['artifacts'].items()},
      'inputParameterValues': executor_input['inputs']['parameterValues'],
      'outputArtifactsSpec': {
          name: {k: v for k, v in listed['artifacts'][0].items() if k != 'uri'}
          for name, listed in outputs['artifacts'].items()},
      'outputParametersSpec': sorted(outputs.get('parameters', {})),
      'containerSpec': {'image': box['image'],
                        'cmdArgs': box.get('command', []) + box.get('args', [])},
  }
  return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
