"""VGG16 pretrained on ImageNet, fine-tuned in two phases.

Called by TFX's Trainer component through `run_fn` (the dotted path
`components.trainers.vgg16.run_fn`, which `pipeline.create.create_pipeline`
sets from the `vgg16.module` setting). Phase one trains the head on the
frozen base; phase two fine-tunes the whole network.
"""

from components.trainers import base, models, vgg16_weights


def build(config, pixel_mean, pixel_std) -> base.Built:
  choice = vgg16_weights.resolve(config.weights, require=config.require_weights)
  model = models.build_vgg16(
      input_size=config.input_size, weights_path=choice.path,
      dropout=config.dropout, pixel_mean=tuple(pixel_mean),
      pixel_std=tuple(pixel_std))
  return base.Built(model=model, weights_origin=choice.origin,
                    pretrained=choice.pretrained,
                    frozen_layer='vgg16' if choice.pretrained else None)


def preflight(config) -> str:
  """Checked by the command line before any work starts: with `full`, missing
  ImageNet weights stop the run here, not after hours of training."""
  return vgg16_weights.resolve(
      config.weights, require=config.require_weights).origin


run_fn = base.make_run_fn(build)
