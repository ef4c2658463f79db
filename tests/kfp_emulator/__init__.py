"""Runs a compiled pipeline spec task by task, as KFP 2.x's driver and launcher do.

Used by tests/pipeline/test_kfp_run.py (the end-to-end run of the compiled
spec) and tests/pipeline/test_kfp_emulator.py (its strictness). Written from
kubeflow/pipelines backend/src/v2 (driver/, component/launcher_v2.go,
metadata/, cacheutils/); `driver.py` and `launcher.py` name the functions
they follow.

Reproduced, per run:
- the run's pipeline root: the one the run request carries (KFP's backend
  ignores the spec's defaultPipelineRoot; without one, the kfp-launcher
  ConfigMap's, minio://mlpipeline/v2/artifacts), then
  `<root>/<pipeline name>/<run id>/<task>/<uuid>/<output>` per output;
- tasks in dependency order; parameters from `runtimeValue.constant` only,
  checked against the component's `parameterType` (a schema 2.0.0
  `constantValue` or a definition without parameterType is a `SpecError`);
- input artifacts from the producer's recorded outputs: name = MLMD id, the
  URI, the metadata the producer's executor wrote to its output file merged
  over the provisioned one, passed through MLMD's value conversion;
- the executor input JSON, `{{$}}` and the other placeholders, the
  components' default parameter values;
- the container's own command, args and env, with each secret key the
  kubernetes platform spec maps (secretAsEnv) as env;
- KFP's cache: a task whose cachingOptions enable it, with the same
  fingerprint (parameters, input artifact ids, output specs, command, image)
  as an earlier execution of that pipeline, reuses that execution's outputs
  and runs nothing.

Not reproduced: Argo's scheduling (tasks run one at a time here, never in
parallel, and not in pods); the MLMD server and the KFP API (a dict stands
in); the launcher's own object-store client (it copies local output folders
up; TFX writes straight to the object store, so a local output is an error
here) and its ConfigMap `providers`; retries; container resources, so no GPU
node pools (the Trainers train on this machine's CPUs); the image itself
(the project folder and this Python stand in for it); trigger conditions,
loops and nested DAGs, which the spec does not use.
"""

from __future__ import annotations

import dataclasses
import os
import time
import uuid

from tests.kfp_emulator import driver, launcher
from tests.kfp_emulator.driver import Metadata, SpecError  # noqa: F401

KFP_DEFAULT_ROOT = 'minio://mlpipeline/v2/artifacts'  # config/env.go


@dataclasses.dataclass
class TaskRun:
  name: str
  state: str  # COMPLETE or CACHED
  seconds: float  # wall time of the task, driver to recorded outputs
  executor_input: dict
  outputs: dict  # output name -> driver.Artifact


def _secrets_as_env(platform: dict | None, spec: dict, task: str) -> list:
  if not platform:
    return []
  label = driver.component(spec, task)['executorLabel']
  executors = platform['platforms']['kubernetes']['deploymentSpec']['executors']
  return executors.get(label, {}).get('secretAsEnv', [])


def run(spec: dict, platform: dict | None, *, store: Metadata, pipeline_root: str,
        secrets: dict, workdir: str, image_root: str, local_root: str,
        until: str = '', timeout: float = 900, echo=print) -> list[TaskRun]:
  """One run of `spec`; stops after task `until` if given. Raises SpecError
  or RuntimeError (a failed task, with its log's tail)."""
  name = spec['pipelineInfo']['name']
  run_id = str(uuid.uuid4())
  run_root = driver.output_uri(pipeline_root or KFP_DEFAULT_ROOT, name, run_id)
  job = dict(zip(driver.JOB_PLACEHOLDERS, (name, run_id, run_id, '', '')))
  produced, runs = {}, []
  for task in driver.task_order(spec):
    start = time.time()
    body = spec['root']['dag']['tasks'][task]
    parameters = driver.resolve_parameters(
        spec, task, {**job, '{{$.pipeline_task_name}}': task})
    outputs, task_root = driver.provision_outputs(spec, task, run_root)
    outputs['outputFile'] = os.path.join(
        local_root + launcher.local_path_for_uri(task_root), 'output_metadata.json')
    executor_input = {'inputs': {
        'parameterValues': parameters,
        'artifacts': driver.resolve_artifacts(spec, task, produced)},
                      'outputs': outputs}
    box = driver.container(spec, task)
    cached = body.get('cachingOptions', {}).get('enableCache', False)
    key = driver.fingerprint(name, executor_input, box) if cached else ''
    if key in store.cache:
      produced[task], state = store.cache[key], 'CACHED'
    else:
      launcher.launch(
          executor_input=executor_input, component=driver.component(spec, task),
          box=box, secrets_as_env=_secrets_as_env(platform, spec, task),
          secrets=secrets, workdir=workdir, image_root=image_root,
          local_root=local_root, timeout=timeout,
          log_path=os.path.join(local_root, f'{run_id}-{task}.log'))
      produced[task] = {
          output: store.record(output, listed['artifacts'][0])
          for output, listed in outputs['artifacts'].items()}
      if key:
        store.cache[key] = produced[task]
      state = 'COMPLETE'
    runs.append(TaskRun(task, state, time.time() - start, executor_input,
                        produced[task]))
    echo(f'  {task:<20} {state:<9} {runs[-1].seconds:6.1f} s')
    if task == until:
      break
  return runs
