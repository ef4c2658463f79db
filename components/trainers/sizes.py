"""The image sides each network takes, as numbers free of Keras.

Read by `components.trainers.models` (the builders' argument checks) and by
`components.trainers.checks` (the configuration check that runs before any
work and must not import Keras), so the two agree without being kept in
sync by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SMALLEST = 32  # px: CIFAR-10's side; the models upsample, never shrink


@dataclass(frozen=True)
class SideRule:
  """Which square sides a network's first layer may see."""
  step: int  # px; the side is a multiple of it (one halving per 2x2 pool)
  largest: int  # px
  why_largest: str  # what grows past it, for the message


# Three pools. fc6 holds (side / 8)^2 x 256 x 4096 weights: 1 GiB at 128 px.
ALEXNET = SideRule(8, 128, 'its first dense layer grows with the square of '
                   'the side')
# Five pools; global average pooling, so only compute grows with the side.
VGG16 = SideRule(32, 512, 'its compute grows with the square of the side')
# A trainer module of a user's own: only what neither network takes is
# refused before the run; its builder checks the rest when it builds.
ANY = SideRule(math.gcd(ALEXNET.step, VGG16.step),
               max(ALEXNET.largest, VGG16.largest), 'no network here takes more')


def rule_for(module: str) -> SideRule:
  """The rule of the network a trainer module (dotted path) builds: VGG16's
  for a module named `vgg16`, AlexNet's for one named `alexnet`, and `ANY`
  for a module named otherwise (whose network this check cannot know)."""
  return {'vgg16': VGG16, 'alexnet': ALEXNET}.get(module.rsplit('.', 1)[-1], ANY)


def problem(rule: SideRule, side: object) -> str | None:
  """Why `side` does not suit `rule`, or None when it does."""
  if not isinstance(side, int) or side < SMALLEST or side % rule.step:
    first = -(-SMALLEST // rule.step)  # the smallest multiple's factor
    sides = ', '.join(str(rule.step * k) for k in range(first, first + 3))
    return f'must be a multiple of {rule.step} ({sides} ...), got {side!r}.'
  if side > rule.largest:
    return (f'must be <= {rule.largest} for this model ({rule.why_largest}), '
            f'got {side}.')
  return None
