"""Reads what a pipeline run did back out of ML Metadata.

Called by `pipeline/local.py` for the end-of-run summary, and by the `runs`
and `report` commands (`pipeline/commands/runs.py`, `pipeline/report/`).
Everything is found through MLMD's contexts, executions and events, never by
guessing paths.
"""

from __future__ import annotations

import dataclasses
import json
import os

from components.errors import UserError

STATE_NAMES = {0: 'UNKNOWN', 1: 'NEW', 2: 'RUNNING', 3: 'COMPLETE',
               4: 'FAILED', 5: 'CACHED', 6: 'CANCELED'}


@dataclasses.dataclass
class NodeRun:
  node_id: str
  state: str
  seconds: float
  outputs: dict  # output key -> list of artifact protos


@dataclasses.dataclass
class RunRecord:
  run_id: str
  started: float  # seconds since the epoch
  nodes: list[NodeRun]

  def node(self, node_id: str) -> NodeRun | None:
    return next((n for n in self.nodes if n.node_id == node_id), None)


def open_store(metadata_path: str):
  from ml_metadata import metadata_store
  from ml_metadata.proto import metadata_store_pb2
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = metadata_path
  config.sqlite.connection_mode = 1  # READONLY
  return metadata_store.MetadataStore(config)


def _outputs(store, execution_id: int) -> dict:
  from ml_metadata.proto import metadata_store_pb2
  events = [e for e in store.get_events_by_execution_ids([execution_id])
            if e.type in (metadata_store_pb2.Event.OUTPUT,
                          metadata_store_pb2.Event.DECLARED_OUTPUT)]
  artifacts = {a.id: a for a in store.get_artifacts_by_id(
      [e.artifact_id for e in events])}
  outputs: dict = {}
  for event in events:
    key = event.path.steps[0].key if event.path.steps else ''
    outputs.setdefault(key, []).append(artifacts[event.artifact_id])
  return outputs


def list_runs(metadata_path: str) -> list[RunRecord]:
  """Every pipeline run in the store, newest first."""
  if not os.path.exists(metadata_path):
    return []
  store = open_store(metadata_path)
  records = []
  for context in store.get_contexts_by_type('pipeline_run'):
    nodes = []
    executions = store.get_executions_by_context(context.id)
    for execution in sorted(executions, key=lambda e: e.create_time_since_epoch):
      node_contexts = [c for c in store.get_contexts_by_execution(execution.id)
                       if c.type_id != context.type_id and '.' in c.name]
      node_id = (node_contexts[0].name.split('.', 1)[1] if node_contexts
                 else execution.name)
      seconds = (execution.last_update_time_since_epoch -
                 execution.create_time_since_epoch) / 1000.0
      nodes.append(NodeRun(node_id, STATE_NAMES.get(
          execution.last_known_state, '?'), seconds, _outputs(store, execution.id)))
    records.append(RunRecord(context.name, context.create_time_since_epoch / 1e3,
                             nodes))
  return sorted(records, key=lambda r: r.started, reverse=True)


def decision(record: RunRecord) -> dict | None:
  """The ModelSelector's decision of this run, as recorded in MLMD."""
  node = record.node('ModelSelector')
  if not node or not node.outputs.get('pushed_model'):
    return None
  artifact = node.outputs['pushed_model'][0]
  if 'decision' not in artifact.custom_properties:
    return None
  return json.loads(artifact.custom_properties['decision'].string_value)


def split_counts(record: RunRecord) -> dict[str, int]:
  """Examples per split, from StatisticsGen's output."""
  node = record.node('StatisticsGen')
  if not node or not node.outputs.get('statistics'):
    return {}
  import tensorflow_data_validation as tfdv
  uri = node.outputs['statistics'][0].uri
  counts = {}
  for split in sorted(os.listdir(uri)):
    path = os.path.join(uri, split, 'FeatureStats.pb')
    if split.startswith('Split-') and os.path.exists(path):
      stats = tfdv.load_stats_binary(path)
      counts[split[len('Split-'):]] = int(stats.datasets[0].num_examples)
  return counts


# --- Helpers for the `runs` and `report` commands (no TensorFlow here). ---

TRAINER_PREFIX, EVALUATOR_PREFIX = 'Trainer_', 'Evaluator_'


class RunNotFound(UserError, LookupError):
  """No run (or no single run) matches the id asked for; str() says which."""


def artifact(record: RunRecord, node_id: str, key: str):
  """The first output artifact `key` of `node_id` in this run, or None.

  A cached execution's outputs are the artifacts of the execution it reused,
  so this is the same artifact whether the node ran or came from cache.
  """
  node = record.node(node_id)
  found = node.outputs.get(key) if node else None
  return found[0] if found else None


def model_names(record: RunRecord) -> list[str]:
  """The candidate models of this run, in DAG order (from the Trainer ids)."""
  return [n.node_id[len(TRAINER_PREFIX):] for n in record.nodes
          if n.node_id.startswith(TRAINER_PREFIX)]


def status(record: RunRecord) -> str:
  """'complete', 'cached', 'complete (3 of 11 cached)', 'failed at X' ..."""
  failed = [n.node_id for n in record.nodes if n.state in ('FAILED', 'CANCELED')]
  if failed:
    return f'failed at {", ".join(failed)}'
  open_nodes = [n.node_id for n in record.nodes
                if n.state not in ('COMPLETE', 'CACHED')]
  if open_nodes or not record.node('ModelSelector'):
    return f'incomplete (at {open_nodes[0]})' if open_nodes else 'incomplete'
  cached = sum(n.state == 'CACHED' for n in record.nodes)
  if cached == len(record.nodes):
    return 'cached'
  return f'complete ({cached} of {len(record.nodes)} cached)' if cached else (
      'complete')


def pushed_model(record: RunRecord):
  """The ModelSelector's PushedModel artifact of this run, or None."""
  return artifact(record, 'ModelSelector', 'pushed_model')


def producer(records: list[RunRecord], artifact_id: int) -> RunRecord | None:
  """The run whose execution produced (not reused from cache) an artifact."""
  for record in sorted(records, key=lambda r: r.started):
    for node in record.nodes:
      if node.state == 'COMPLETE' and any(
          a.id == artifact_id for found in node.outputs.values() for a in found):
        return record
  return None


def previous_push(records: list[RunRecord],
                  record: RunRecord) -> tuple[RunRecord, dict] | None:
  """The push served before this run's: the newest older run that pushed a
  different PushedModel artifact, with its decision; None if there is none."""
  current = pushed_model(record)
  for older in sorted(records, key=lambda r: r.started, reverse=True):
    if older.started >= record.started:
      continue
    other = pushed_model(older)
    if other is None or (current is not None and other.id == current.id):
      continue
    found = decision(older)
    if found and found.get('chosen'):
      return older, found
  return None


def find_run(records: list[RunRecord], run_id: str | None) -> RunRecord:
  """The run named `run_id` (exact, else a unique prefix); newest if None.

  Raises RunNotFound with a message naming the runs there are.
  """
  if not records:
    raise RunNotFound('No pipeline runs recorded in this ML Metadata store.')
  if not run_id:
    return records[0]
  exact = [r for r in records if r.run_id == run_id]
  matches = exact or [r for r in records if r.run_id.startswith(run_id)]
  if len(matches) == 1:
    return matches[0]
  known = ', '.join(r.run_id for r in records[:5])
  if matches:
    raise RunNotFound(f'Run {run_id!r} is ambiguous: it starts '
                      f'{len(matches)} run ids. Give more of it ({known} ...).')
  raise RunNotFound(f'No run {run_id!r}. Newest runs: {known}'
                    f'{" ..." if len(records) > 5 else ""}.')
