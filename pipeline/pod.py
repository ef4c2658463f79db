"""The command every Kubeflow node runs: TFX's v2 container entrypoint, wrapped.

Run by the pods (`python -m pipeline.pod ARGS`: the command that
`pipeline/kubeflow.py` compiles into every node of the spec), with the
arguments KFP gives TFX's own entrypoint
(`tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor`). Two
things it adds:

- for an s3:// (or MinIO) pipeline root it loads tensorflow-io's S3 file
  system before TFX touches an artifact URI (TensorFlow has gs:// built in);
- it ends the process with `os._exit` once the executor has finished and the
  logs are flushed: tensorflow-io's S3 client aborts in its static
  destructors at interpreter exit ("pure virtual method called", status 134),
  which would mark a node that succeeded as failed.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback


def uses_s3(argv: list[str]) -> bool:
  return bool(os.environ.get('S3_ENDPOINT')) or any('s3://' in a for a in argv)


def run(argv: list[str]) -> int:
  """Runs TFX's entrypoint on `argv` (argv[0] is the program); its exit status."""
  if uses_s3(argv):
    from components import fileio
    fileio.register_s3()
  from absl import app
  from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor as entry
  try:
    app.run(entry.main, argv=argv,
            flags_parser=entry._parse_flags)  # pylint: disable=protected-access
  except SystemExit as done:
    return done.code if isinstance(done.code, int) else int(done.code is not None)
  except BaseException:  # pylint: disable=broad-except
    traceback.print_exc()
    return 1
  return 0


def main() -> None:
  code = run(sys.argv)
  sys.stdout.flush()
  sys.stderr.flush()
  logging.shutdown()
  os._exit(code)  # pylint: disable=protected-access


if __name__ == '__main__':
  main()
