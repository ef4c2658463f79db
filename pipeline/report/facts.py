"""Gathers what the report shows about one run, as plain dicts and lists.

Called by `pipeline/report/__init__.py` (`build`). Every file is found from
an artifact that ML Metadata links to the run's executions (`pipeline.runs`);
a cached execution's outputs are the artifacts of the execution it reused, so
a cached run reports the same models and evaluations as the run that made them.
"""

from __future__ import annotations

import json
import os

from components import evaluation_metrics
from pipeline import runs
from pipeline.config import CLASS_NAMES
from pipeline.report import tfma_results

SERVING_SUBDIR = 'Format-Serving'  # tfx.utils.path_utils.serving_model_dir


def _read_json(path: str):
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def disk_bytes(path: str) -> int:
  return sum(os.path.getsize(os.path.join(folder, name))
             for folder, _, names in os.walk(path) for name in names)


def _origin(records, record, node_id: str) -> str | None:
  """For a cached node: the run whose execution made its outputs."""
  node = record.node(node_id)
  if not node or node.state != 'CACHED':
    return None
  for found in node.outputs.values():
    if found:
      origin = runs.producer(records, found[0].id)
      return origin.run_id if origin else None
  return None


def model_facts(records, record, name: str) -> dict:
  """Training, evaluation and files of one candidate model."""
  trainer = runs.TRAINER_PREFIX + name
  evaluator = runs.EVALUATOR_PREFIX + name
  model = runs.artifact(record, trainer, 'model')
  model_run = runs.artifact(record, trainer, 'model_run')
  evaluation = runs.artifact(record, evaluator, 'evaluation')
  blessing = runs.artifact(record, evaluator, 'blessing')
  facts: dict = {'name': name, 'saved_model': None, 'info': {}, 'history': [],
                 'size_bytes': None, 'metrics': {}, 'per_class': {},
                 'confusion': {'matrix': [], 'unpredicted': 0.0},
                 'thresholds': [], 'blessed': None,
                 'trainer_origin': _origin(records, record, trainer),
                 'evaluation_uri': evaluation.uri if evaluation else None}
  if model is not None:
    serving = os.path.join(model.uri, SERVING_SUBDIR)
    if os.path.isdir(serving):
      facts['saved_model'] = serving
      facts['size_bytes'] = disk_bytes(serving)
      facts['info'] = _read_json(os.path.join(
          serving, 'assets.extra', 'model_info.json')) or {}
  if model_run is not None:
    facts['history'] = _read_json(os.path.join(model_run.uri,
                                               'history.json')) or []
    facts['info'] = _read_json(os.path.join(
        model_run.uri, 'model_info.json')) or facts['info']
  if evaluation is not None and os.path.isdir(evaluation.uri):
    found = evaluation_metrics.metrics(evaluation.uri)
    facts['metrics'], facts['per_class'] = found['overall'], found['per_class']
    facts['confusion'] = tfma_results.confusion_matrix(evaluation.uri,
                                                       len(CLASS_NAMES))
    facts['thresholds'] = tfma_results.thresholds(evaluation.uri)
  if blessing is not None and 'blessed' in blessing.custom_properties:
    facts['blessed'] = bool(blessing.custom_properties['blessed'].int_value)
  return facts


def label_counts(record) -> dict[str, dict[int, int]]:
  """Images per split and class, from StatisticsGen's label statistics."""
  statistics = runs.artifact(record, 'StatisticsGen', 'statistics')
  if statistics is None or not os.path.isdir(statistics.uri):
    return {}
  import tensorflow_data_validation as tfdv
  counts: dict = {}
  for split in sorted(os.listdir(statistics.uri)):
    path = os.path.join(statistics.uri, split, 'FeatureStats.pb')
    if not (split.startswith('Split-') and os.path.exists(path)):
      continue
    dataset = tfdv.load_stats_binary(path).datasets[0]
    per_class: dict = {}
    for feature in dataset.features:
      if feature.path.step[:1] == ['label'] and feature.HasField('string_stats'):
        for top in feature.string_stats.top_values:
          if top.value.lstrip('-').isdigit():
            per_class[int(top.value)] = int(top.frequency)
    per_class.setdefault(-1, int(dataset.num_examples))  # -1: the total
    counts[split[len('Split-'):]] = per_class
  return counts


def anomalies(record) -> list[str] | None:
  """ExampleValidator's anomalies, one line each; None if it did not run.

  Read with the DataGate's own reader, which imports no TFX.
  """
  found = runs.artifact(record, 'ExampleValidator', 'anomalies')
  if found is None or not os.path.isdir(found.uri):
    return None
  from components import anomalies as anomalies_lib
  splits = sorted(d[len('Split-'):] for d in os.listdir(found.uri)
                  if d.startswith('Split-') and os.path.exists(os.path.join(
                      found.uri, d, anomalies_lib.ANOMALIES_FILE)))
  return anomalies_lib.describe(found.uri, splits)


def decision_facts(records, record) -> dict | None:
  """The ModelSelector's decision plus where it came from and what it replaced."""
  found = runs.decision(record)
  if found is None:
    return None
  pushed = runs.pushed_model(record)
  origin = runs.producer(records, pushed.id) if pushed is not None else None
  facts = dict(found, pushed_by=origin.run_id if origin else None,
               destination_exists=bool(found.get('destination')) and
               os.path.isdir(found['destination']))
  if found.get('destination'):
    model_dir = os.path.dirname(found['destination'])
    versions = [int(d) for d in os.listdir(model_dir) if d.isdigit()] if (
        os.path.isdir(model_dir)) else []
    facts['newest_version'] = max(versions, default=None)
  previous = runs.previous_push(records, record)
  if previous is not None:
    older, older_decision = previous
    accuracy = {c['name']: c['accuracy'] for c in
                older_decision['candidates']}.get(older_decision['chosen'])
    old_data = runs.artifact(older, 'Cifar10ExampleGen', 'examples')
    new_data = runs.artifact(record, 'Cifar10ExampleGen', 'examples')
    same_data = bool(old_data and new_data and old_data.id == new_data.id)
    def model_uri(artifact) -> str:
      found = artifact.custom_properties.get('pushed_model') if artifact else None
      return found.string_value if found is not None else ''
    old_uri = model_uri(runs.pushed_model(older))
    facts['previous'] = {
        'same_model': bool(old_uri) and old_uri == model_uri(pushed),
        'run_id': older.run_id, 'model': older_decision['chosen'],
        'version': older_decision.get('version'), 'accuracy': accuracy,
        'destination': older_decision.get('destination'),
        'same_test_split': same_data}
  return facts


def gather(metadata_path: str, run_id: str | None = None) -> dict:
  """All the facts of one run (the newest if `run_id` is None).

  Raises runs.RunNotFound when there is no such run (message names the runs).
  """
  records = runs.list_runs(metadata_path)
  record = runs.find_run(records, run_id)
  examples = runs.artifact(record, 'Cifar10ExampleGen', 'examples')
  return {
      'run_id': record.run_id, 'started': record.started,
      'status': runs.status(record), 'metadata_path': metadata_path,
      'class_names': list(CLASS_NAMES),
      'nodes': [{'id': n.node_id, 'state': n.state, 'seconds': n.seconds,
                 'origin': _origin(records, record, n.node_id)}
                for n in record.nodes],
      'decision': decision_facts(records, record),
      'models': [model_facts(records, record, name)
                 for name in runs.model_names(record)],
      'data': {'counts': label_counts(record), 'anomalies': anomalies(record)},
      'test_examples': (os.path.join(examples.uri, 'Split-test')
                        if examples is not None else None),
  }
