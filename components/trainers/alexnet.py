"""AlexNet of the reference study, trained from scratch.

Called by TFX's Trainer component through `run_fn` (the dotted path
`components.trainers.alexnet.run_fn`, which `pipeline.create.create_pipeline`
sets from the `alexnet.module` setting).
"""

from components.trainers import base, models


def build(config, pixel_mean, pixel_std) -> base.Built:
  del pixel_mean, pixel_std  # inputs arrive normalised by the TFT graph
  return base.Built(model=models.build_alexnet(
      dropout=config.dropout, input_size=config.input_size))


def preflight(config) -> str:
  """Checked by the command line before any work starts; returns a note."""
  return 'random initialisation'


run_fn = base.make_run_fn(build)
