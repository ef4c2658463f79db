"""Chooses the best blessed candidate model and pushes it, atomically.

Called by `pipeline/create.py`, which gives it, per candidate, the Trainer's
model and the Evaluator's evaluation and blessing. Any number of candidates:
the component's inputs are made per candidate name. The decision and its
reason (every accuracy, every threshold result) are recorded on the output
PushedModel artifact in ML Metadata and in `decision.json` beside it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import uuid

from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import channel, component_spec, standard_artifacts

DECISION_FILE = 'decision.json'
METRIC = 'accuracy'  # the metric name configured in pipeline/evaluation.py


@dataclasses.dataclass(frozen=True)
class Candidate:
  name: str
  accuracy: float  # on the test split
  blessed: bool  # passed every threshold of its Evaluator


@dataclasses.dataclass(frozen=True)
class Decision:
  chosen: str | None
  reason: str
  candidates: tuple[Candidate, ...]


def select(candidates: list[Candidate]) -> Decision:
  """The blessed candidate with the highest test accuracy (first on a tie)."""
  blessed = [c for c in candidates if c.blessed]
  scores = ', '.join(f'{c.name} {c.accuracy:.4f} '
                     f'({"passed" if c.blessed else "failed"} thresholds)'
                     for c in candidates)
  if not blessed:
    return Decision(None, f'no candidate passed its thresholds: {scores}',
                    tuple(candidates))
  best = max(blessed, key=lambda c: c.accuracy)  # max keeps the first on ties
  return Decision(best.name, f'{best.name} has the highest test accuracy among '
                  f'blessed candidates: {scores}', tuple(candidates))


def next_version(model_dir: str) -> int:
  versions = [int(d) for d in os.listdir(model_dir) if d.isdigit()] if (
      os.path.isdir(model_dir)) else []
  return max(versions, default=0) + 1


def push(saved_model_dir: str, serving_dir: str, model_name: str) -> str:
  """Copies a SavedModel to <serving_dir>/<model_name>/<next version>/.

  The copy is written to a hidden temporary folder beside the versions and
  renamed into place, so a server never sees a partial version.
  """
  model_dir = os.path.join(serving_dir, model_name)
  os.makedirs(model_dir, exist_ok=True)
  staging = os.path.join(model_dir, f'.staging-{uuid.uuid4().hex}')
  shutil.copytree(saved_model_dir, staging)
  try:
    destination = os.path.join(model_dir, str(next_version(model_dir)))
    os.rename(staging, destination)
  except OSError:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  return destination


def read_accuracy(evaluation_uri: str) -> float:
  import tensorflow_model_analysis as tfma
  for metrics in tfma.load_metrics(evaluation_uri):
    if not metrics.slice_key.single_slice_keys:
      for entry in metrics.metric_keys_and_values:
        if entry.key.name == METRIC:
          return float(entry.value.double_value.value)
  raise ValueError(f'No overall {METRIC!r} metric in {evaluation_uri}.')


class Executor(base_executor.BaseExecutor):
  """Reads each candidate's evaluation and blessing, selects, pushes."""

  def Do(self, input_dict, output_dict, exec_properties):
    from tfx.utils import path_utils
    names = json.loads(exec_properties['candidates'])
    candidates = []
    for name in names:
      blessing = input_dict[f'{name}_blessing'][0]
      candidates.append(Candidate(
          name=name,
          accuracy=read_accuracy(input_dict[f'{name}_evaluation'][0].uri),
          blessed=bool(blessing.get_int_custom_property('blessed'))))
    decision = select(candidates)
    pushed = output_dict['pushed_model'][0]
    record = {'chosen': decision.chosen, 'reason': decision.reason,
              'candidates': [dataclasses.asdict(c) for c in candidates]}
    if decision.chosen:
      model = input_dict[f'{decision.chosen}_model'][0]
      destination = push(path_utils.serving_model_path(model.uri),
                         exec_properties['serving_dir'],
                         exec_properties['model_name'])
      record.update(destination=destination,
                    version=int(os.path.basename(destination)))
      pushed.set_int_custom_property('pushed', 1)
      pushed.set_string_custom_property('pushed_destination', destination)
      pushed.set_int_custom_property('pushed_version', record['version'])
      pushed.set_string_custom_property('pushed_model', model.uri)
    else:
      pushed.set_int_custom_property('pushed', 0)
    pushed.set_string_custom_property('selected_model', decision.chosen or '')
    pushed.set_string_custom_property('decision', json.dumps(record))
    os.makedirs(pushed.uri, exist_ok=True)
    with open(os.path.join(pushed.uri, DECISION_FILE), 'w') as f:
      json.dump(record, f, indent=2)


def ModelSelector(candidates: dict, *, serving_dir: str, model_name: str,
                  code_fingerprint: str = '') -> base_component.BaseComponent:
  """Builds the component for `candidates`: {name: (model, evaluation, blessing)}."""
  inputs = {}
  for name in candidates:
    inputs[f'{name}_model'] = component_spec.ChannelParameter(
        type=standard_artifacts.Model)
    inputs[f'{name}_evaluation'] = component_spec.ChannelParameter(
        type=standard_artifacts.ModelEvaluation)
    inputs[f'{name}_blessing'] = component_spec.ChannelParameter(
        type=standard_artifacts.ModelBlessing)
  spec_class = type('ModelSelectorSpec', (component_spec.ComponentSpec,), {
      'PARAMETERS': {
          'candidates': component_spec.ExecutionParameter(type=str),
          'serving_dir': component_spec.ExecutionParameter(type=str),
          'model_name': component_spec.ExecutionParameter(type=str),
          'code_fingerprint': component_spec.ExecutionParameter(type=str),
      },
      'INPUTS': inputs,
      'OUTPUTS': {'pushed_model': component_spec.ChannelParameter(
          type=standard_artifacts.PushedModel)},
  })
  component_class = type('ModelSelector', (base_component.BaseComponent,), {
      'SPEC_CLASS': spec_class,
      'EXECUTOR_SPEC': executor_spec.ExecutorClassSpec(Executor),
      '__module__': __name__,
  })
  channels = {}
  for name, (model, evaluation, blessing) in candidates.items():
    channels.update({f'{name}_model': model, f'{name}_evaluation': evaluation,
                     f'{name}_blessing': blessing})
  spec = spec_class(
      candidates=json.dumps(list(candidates)),
      serving_dir=os.path.abspath(serving_dir), model_name=model_name,
      code_fingerprint=code_fingerprint,
      pushed_model=channel.Channel(type=standard_artifacts.PushedModel),
      **channels)
  return component_class(spec=spec)
