"""Chooses the best blessed candidate model and pushes it, never a worse one.

Called by `pipeline.create.create_pipeline`, which gives it, per candidate
(any number), the Trainer's model and the Evaluator's evaluation and
blessing, plus the ingested examples. The rule: (1) only candidates that passed their
Evaluator's thresholds; (2) the highest test accuracy (TFMA, this run's test
split); (3) if a model is served (the newest version under
`<serving_dir>/<model_name>/`), it is evaluated here on the same test
examples with the same metric, and the candidate must beat it or trail it by
at most `baseline_tolerance` (a served model that cannot be run is reported
and does not block the push); (4) the staged copy must answer
`serving_default` on a few test examples, else the next candidate is tried.
Steps 3-4 and the push hold the serving directory's push lock
(`components/push.py`); the serving directory may be a local folder or an
object-store URL. The decision and its reason go on the output
PushedModel artifact in ML Metadata and into `decision.json` beside it.
"""

from __future__ import annotations

import dataclasses
import json
import os

from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import channel, component_spec, standard_artifacts

from components import evaluation_metrics, fileio, model_check, settings
from components import push as push_lib
from components.fingerprint import code_fingerprint

DECISION_FILE = 'decision.json'
METRIC = 'accuracy'  # the metric name configured in pipeline/evaluation.py
_EPSILON = 1e-6  # TFMA's accuracy is a float32: closer than this is a tie


@dataclasses.dataclass(frozen=True)
class Candidate:
  name: str
  accuracy: float  # on the test split
  blessed: bool  # passed every threshold of its Evaluator


@dataclasses.dataclass(frozen=True)
class Baseline:
  """The model being served when the selector runs."""
  version: int
  path: str
  accuracy: float | None  # on this run's test split; None: could not be run
  error: str = ''  # why it could not


@dataclasses.dataclass(frozen=True)
class Decision:
  chosen: str | None
  reason: str
  candidates: tuple[Candidate, ...]


def select(candidates: list[Candidate], baseline: Baseline | None = None,
           tolerance: float = 0.0) -> Decision:
  """The blessed candidate with the highest test accuracy (first on a tie),
  if it beats the served `baseline` or trails it by at most `tolerance`."""
  blessed = [c for c in candidates if c.blessed]
  scores = ', '.join(f'{c.name} {c.accuracy:.4f} '
                     f'({"passed" if c.blessed else "failed"} thresholds)'
                     for c in candidates)
  if not blessed:
    return Decision(None, f'no candidate passed its thresholds: {scores}',
                    tuple(candidates))
  best = max(blessed, key=lambda c: c.accuracy)  # max keeps the first on ties
  why = f'{best.name} has the highest test accuracy among blessed candidates'
  if baseline is None:
    return Decision(best.name, f'{why} ({scores}); nothing was served, so the '
                    'absolute threshold alone applies', tuple(candidates))
  served = f'the served version {baseline.version}'
  if baseline.accuracy is None:
    return Decision(best.name, f'{why} ({scores}); {served} could not be '
                    f'evaluated ({baseline.error}), so the absolute threshold '
                    'alone applies', tuple(candidates))
  gap = best.accuracy - baseline.accuracy
  measured = (f'{served}, which scores {baseline.accuracy:.4f} on the same '
              f'test split (serving.baseline_tolerance {tolerance:g})')
  if gap + tolerance >= -_EPSILON:
    verb = 'beats' if gap > _EPSILON else 'ties' if gap >= -_EPSILON else (
        'trails within tolerance')
    return Decision(best.name, f'{why} ({scores}) and {verb} {measured}',
                    tuple(candidates))
  return Decision(None, f'the best blessed candidate, {best.name} '
                  f'({best.accuracy:.4f}), is worse than {measured}; '
                  f'candidates: {scores}', tuple(candidates))


def read_accuracy(evaluation_uri: str) -> float:
  overall = evaluation_metrics.metrics(evaluation_uri)['overall']
  if METRIC not in overall:
    raise ValueError(f'No overall {METRIC!r} metric in {evaluation_uri}.')
  value = overall[METRIC]
  return float('nan') if value is None else value


def push(saved_model_dir: str, serving_dir: str, model_name: str) -> str:
  """Pushes without comparison or check (tests, tools): atomic, versioned."""
  model_dir = push_lib.model_dir(serving_dir, model_name)
  with push_lib.locked(model_dir):
    return push_lib.push(saved_model_dir, model_dir)


def measure_baseline(model_dir: str, examples: list[bytes], labels
                     ) -> Baseline | None:
  """The newest served version and its accuracy on `examples`; None if none."""
  served = push_lib.versions(model_dir)
  if not served:
    return None
  path = os.path.join(model_dir, str(served[-1]))
  try:
    return Baseline(served[-1], path, model_check.accuracy(path, examples, labels))
  except Exception as e:  # pylint: disable=broad-except
    return Baseline(served[-1], path, None, model_check.short(e))


def compare_and_push(candidates: list[Candidate], models: dict[str, str],
                     model_dir: str, examples: list[bytes], labels,
                     tolerance: float, check_examples: int, record: dict
                     ) -> tuple[Decision, str | None]:
  """Rules 3-4 and the push, under the push lock; fills `record`'s baseline
  and check failures. `models`: name -> its SavedModel folder."""
  destination = None
  with push_lib.locked(model_dir):
    baseline = measure_baseline(model_dir, examples, labels)
    record['baseline'] = baseline and dataclasses.asdict(baseline)
    failed = record['check_failures']
    while True:
      left = [c for c in candidates if c.name not in failed]
      decision = select(left, baseline, tolerance) if left else Decision(
          None, 'no candidate is left', tuple(candidates))
      if not decision.chosen:
        break
      if baseline and push_lib.same_model(models[decision.chosen], baseline.path):
        decision = dataclasses.replace(decision, chosen=None, reason=(
            f'{decision.chosen} is already served as version '
            f'{baseline.version}: nothing new to push'))
        break
      try:
        destination = push_lib.push(models[decision.chosen], model_dir,
                                    model_check.answers(examples[:check_examples]))
        break
      except model_check.CheckFailed as e:
        failed[decision.chosen] = str(e)
  if failed:
    decision = dataclasses.replace(decision, reason='; '.join(
        f'{n} failed the pre-push check (its SavedModel did not answer '
        f'serving_default: {e})' for n, e in failed.items())
        + f'; then: {decision.reason}')
  return decision, destination


class Executor(base_executor.BaseExecutor):
  """Reads each candidate's evaluation and blessing, selects, checks, pushes."""

  def Do(self, input_dict, output_dict, exec_properties):
    from tfx.utils import path_utils
    candidates, models = [], {}
    for name in json.loads(exec_properties['candidates']):
      blessing = input_dict[f'{name}_blessing'][0]
      candidates.append(Candidate(
          name=name,
          accuracy=read_accuracy(input_dict[f'{name}_evaluation'][0].uri),
          blessed=bool(blessing.get_int_custom_property('blessed'))))
      models[name] = input_dict[f'{name}_model'][0].uri
    serving = settings.from_json(push_lib.ServingConfig,
                                 exec_properties['settings'])
    tolerance = serving.baseline_tolerance
    record = {'candidates': [dataclasses.asdict(c) for c in candidates],
              'baseline': None, 'baseline_tolerance': tolerance,
              'check_failures': {}}
    decision, destination = select(candidates, None, tolerance), None
    if decision.chosen:  # someone may be pushed: compare, check, push
      examples, labels = model_check.read_examples(input_dict['examples'][0].uri)
      decision, destination = compare_and_push(
          candidates, {n: path_utils.serving_model_path(uri)
                       for n, uri in models.items()},
          push_lib.model_dir(serving.directory, serving.model_name),
          examples, labels, tolerance, serving.check_examples, record)
    self._record(output_dict['pushed_model'][0], decision, destination,
                 models, record)

  @staticmethod
  def _record(pushed, decision: Decision, destination: str | None,
              models: dict, record: dict) -> None:
    record.update(chosen=decision.chosen, reason=decision.reason)
    if destination:
      record.update(destination=destination,
                    version=int(os.path.basename(destination)))
      pushed.set_int_custom_property('pushed', 1)
      pushed.set_string_custom_property('pushed_destination', destination)
      pushed.set_int_custom_property('pushed_version', record['version'])
      pushed.set_string_custom_property('pushed_model', models[decision.chosen])
    else:
      record['chosen'] = None
      pushed.set_int_custom_property('pushed', 0)
    pushed.set_string_custom_property('selected_model', record['chosen'] or '')
    pushed.set_string_custom_property('decision', json.dumps(record))
    fileio.makedirs(pushed.uri)
    with fileio.open_file(os.path.join(pushed.uri, DECISION_FILE), 'w') as f:
      json.dump(record, f, indent=2)


def ModelSelector(candidates: dict, *, examples,
                  serving: push_lib.ServingConfig) -> base_component.BaseComponent:
  """Builds the component for `candidates`: {name: (model, evaluation, blessing)}.

  `examples`: the ingested Examples channel, whose test split measures the
  served model and feeds the pre-push check. `serving`: where to push
  (`directory`, a folder or bucket URL as the node will see it, used as
  given) and the push rules. A spec class built here, because the number of
  inputs follows the number of candidates.
  """
  inputs = {'examples': component_spec.ChannelParameter(
      type=standard_artifacts.Examples)}
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
          'settings': component_spec.ExecutionParameter(type=str),
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
  channels = {'examples': examples}
  for name, (model, evaluation, blessing) in candidates.items():
    channels.update({f'{name}_model': model, f'{name}_evaluation': evaluation,
                     f'{name}_blessing': blessing})
  spec = spec_class(
      candidates=json.dumps(list(candidates)),
      settings=settings.to_json(serving),
      code_fingerprint=code_fingerprint(__name__),
      pushed_model=channel.Channel(type=standard_artifacts.PushedModel),
      **channels)
  return component_class(spec=spec)
