"""Runs the pipeline locally: LocalDagRunner, SQLite ML Metadata, Beam DirectRunner.

Called by `cifar10-tfx run` (`pipeline/commands/run.py`) and by the
end-to-end tests. Supplies `create_pipeline` with this machine's locations
(`locations`), holds a lock on the pipeline root for the run, shows one line
per component as it starts and ends, lets a `UserError` raised anywhere in
the run reach the command line as itself, and ends with a summary read from
ML Metadata.
"""

from __future__ import annotations

import fcntl
import logging
import os
import pathlib
import re
import time

from components import errors
from pipeline import runs, store_checks, timings
from pipeline.config import PipelineConfig

SCHEMA_FILE = pathlib.Path(__file__).resolve().parents[1] / 'data' / 'schema.pbtxt'


class RunFailed(errors.UserError):
  """The run could not start or stopped for a reason the user can act on."""


class _ComponentLines(logging.Filter):
  """Lets through component start/end lines (with durations) and warnings."""

  def __init__(self, echo):
    super().__init__()
    self.echo, self.started, self.cached = echo, {}, set()

  def filter(self, record: logging.LogRecord) -> bool:
    message = record.getMessage()
    if message.startswith('Component ') and message.endswith(' is running.'):
      node = message.split()[1]
      self.started[node] = time.time()
      self.echo(f'[{time.strftime("%H:%M:%S")}] {node} ...')
    elif message.startswith('Component ') and message.endswith(' is finished.'):
      node = message.split()[1]
      seconds = time.time() - self.started.get(node, time.time())
      state = 'cached' if node in self.cached else 'done'
      self.echo(f'[{time.strftime("%H:%M:%S")}] {node} {state} in {seconds:.1f} s')
    elif message.startswith('A cached execution'):
      self.cached.update(self.started)
    elif record.levelno >= logging.ERROR and _said_at_the_end(record):
      return False  # the run ends with its one-message form (RunFailed)
    elif record.name.startswith(('components', 'pipeline')) or (
        record.levelno >= logging.ERROR):
      return True
    return False


def _said_at_the_end(record: logging.LogRecord) -> bool:
  """An error log of a failure the run ends with anyway: Beam's and TFX's
  tracebacks of a UserError, and TFX's 'Execution 3 failed.' line after it."""
  error = record.exc_info[1] if record.exc_info else record.msg
  return bool(re.fullmatch(r'Execution \d+ failed\.', record.getMessage())) or (
      isinstance(error, BaseException) and errors.find(error) is not None)


def _lock(root: str):
  os.makedirs(root, exist_ok=True)
  handle = open(os.path.join(root, '.lock'), 'w')
  try:
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except OSError:
    handle.close()
    raise RunFailed(f'Another run holds this root ({os.path.abspath(root)}). '
                    'Wait for it to finish, or pass another --root.') from None
  return handle


def _set_level_when_changed(logger: logging.Logger):
  set_level = logger.setLevel

  def set_level_when_changed(level):
    if level != logger.level:
      set_level(level)
  return set_level_when_changed


def locations(config: PipelineConfig) -> dict:
  """`create_pipeline`'s locations on this machine: folders under the root,
  the serving folder and the checkout's schema, as absolute paths."""
  from tfx import v1 as tfx
  root = os.path.abspath(config.root)
  return dict(
      pipeline_root=os.path.join(root, 'artifacts'),
      serving_dir=os.path.abspath(config.serving.directory)
      if '://' not in config.serving.directory else config.serving.directory,
      schema_uri=str(SCHEMA_FILE),
      metadata_connection_config=(
          tfx.orchestration.metadata.sqlite_metadata_connection_config(
              os.path.abspath(config.metadata_path))),
      beam_args=list(config.beam_args))


def run(config: PipelineConfig, source, echo=print) -> runs.RunRecord:
  """Runs the DAG once. A UserError raised by any node (bad data, failed
  validation, missing weights) reaches the caller as itself, unwrapped."""
  store_checks.check_root(config.root, config.metadata_path)
  handle = _lock(config.root)  # first: a second run ends before any import
  from components.trainers import device
  for trainer in config.models.values():  # before TensorFlow starts
    device.configure(trainer.devices)
  from tfx import v1 as tfx

  from pipeline.create import create_pipeline

  handler = logging.StreamHandler()
  handler.addFilter(_ComponentLines(echo))
  # TFX logs through absl's logger, the project through its module loggers;
  # both go to the filtering handler only, TensorFlow's chatter is cut.
  saved = []
  for name, level in (('absl', logging.INFO), ('components', logging.INFO),
                      ('pipeline', logging.INFO), ('apache_beam', logging.ERROR),
                      ('tensorflow', logging.ERROR)):
    logger = logging.getLogger(name)
    saved.append((logger, logger.handlers[:], logger.level, logger.propagate))
    logger.handlers[:] = [handler] if name != 'tensorflow' else logger.handlers
    logger.setLevel(level)
    logger.propagate = False
  # TensorFlow's SavedModel code turns absl's verbosity down mid-run (through
  # absl.logging.set_verbosity), which would silence the component lines.
  absl_logger = logging.getLogger('absl')
  absl_logger.setLevel = lambda level: None
  # Beam pickles each DoFn, coder and bundle descriptor with dill, and sets
  # dill's logger to WARNING after each (dill_pickler.dumps/loads). Every
  # Logger.setLevel clears the caches of all the ~1,000 loggers TensorFlow and
  # TFX create: 0.19 ms, about 5,700 times from ingestion through Transform.
  # Setting the level it already has needs no clearing.
  dill_logger = logging.getLogger('dill')
  dill_logger.setLevel = _set_level_when_changed(dill_logger)
  try:
    pipeline = create_pipeline(config, source=source, **locations(config))
    tfx.orchestration.LocalDagRunner().run(pipeline)
    # Read back while absl's logger still goes through the filter (MLMD's
    # 'MetadataStore with DB connection initialized' is not for the user).
    record = runs.list_runs(os.path.abspath(config.metadata_path))[0]
  except Exception as error:  # pylint: disable=broad-except
    found = errors.find(error)
    if found is not None and found is not error:
      raise found from None
    raise
  finally:
    del absl_logger.setLevel, dill_logger.setLevel
    for logger, handlers, level, propagate in saved:
      logger.handlers[:], logger.level, logger.propagate = (
          handlers, level, propagate)
    handle.close()
  return record


def summary(record: runs.RunRecord) -> str:
  """Data counts, per-component times, test accuracy per model, the push."""
  lines = [f'Run {record.run_id}']
  counts = runs.split_counts(record)
  if counts:
    lines.append('Data: ' + ', '.join(f'{k} {v}' for k, v in counts.items()))
  lines.append('Components (wall time):')
  lines.append(timings.format_table(timings.table(record)))
  decision = runs.decision(record)
  if decision:
    for c in decision['candidates']:
      lines.append(f'Test accuracy {c["name"]:<8} {c["accuracy"]:.4f} '
                   f'({"passed" if c["blessed"] else "failed"} thresholds)')
    if decision['chosen']:
      lines.append(f'Pushed {decision["chosen"]} to {decision["destination"]}')
    else:
      lines.append(f'Nothing pushed: {decision["reason"]}')
  return '\n'.join(lines)
