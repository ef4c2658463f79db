"""AlexNet of the reference study, trained from scratch.

Called by TFX's Trainer component through `run_fn` (the dotted path
`components.trainers.alexnet.run_fn`, set in `pipeline.create.create_pipeline`).
"""

from components.trainers import base, models


def build(config, pixel_mean, pixel_std) -> base.Built:
  del pixel_mean, pixel_std  # inputs arrive normalised by the TFT graph
  return base.Built(model=models.build_alexnet(dropout=config.dropout))


def preflight(config) -> str:
  """Checked by the command line before any work starts; returns a note."""
  return 'random initialisation'


run_fn = base.make_run_fn(build)
