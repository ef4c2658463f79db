"""`TrainerConfig`: everything a user may set about one model's training.

A leaf module. Composed into the pipeline's configuration by
`pipeline/config.py` (one per model, with presets there); handed to TFX's
Trainer as one JSON string (`components.settings`) and read back by
`components.trainers.base.run_fn`, the training loop and the benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.cifar10 import IMAGE_SIZE

DECAYS = ('cosine', 'linear')  # shapes of the learning rate's decay after the warm-up


@dataclass
class TrainerConfig:
  module: str = ''  # dotted path of the trainer module holding run_fn
  epochs: int = 30  # upper bound; early stopping on validation may end sooner
  batch_size: int = 128  # images per step
  optimizer: str = 'sgd'  # 'sgd' (Nesterov momentum) or 'adamw'
  learning_rate: float = 0.1  # peak rate for 256 images per step, scaled linearly
  momentum: float = 0.9
  weight_decay: float = 5e-3  # per step, times the learning rate (Keras's decoupled form)
  label_smoothing: float = 0.1
  # Rate of BatchNorm offsets (beta) over the rest's (airbench's 64x for
  # BatchNorm biases; components/trainers/schedule.OffsetRate); 1 = the same.
  offset_lr_factor: float = 1.0
  scale_lr_factor: float = 1.0  # the same for BatchNorm scales (gamma); 0 = frozen at 1 (airbench)
  ema_momentum: float = 0.0  # Polyak average of the weights per step, validated and exported; 0 = off
  warmup_epochs: float = 1.0  # linear warm-up, then `decay` to zero
  decay: str = 'cosine'  # shape of the decay to zero at the last step: 'cosine' or 'linear'
  dropout: float = 0.5  # in the dense head
  early_stopping_patience: int = 0  # epochs without val accuracy gain, 0 = off
  steps_per_epoch: int = 0  # 0 = one pass over the training split
  crop_padding: int = 4  # px of padding for the random crop, 0 = no crop
  horizontal_flip: bool = True
  # With horizontal_flip: mirror each training image in every other epoch
  # (airbench's alternating flip, components/trainers/augment.py), not at random.
  alternate_flip: bool = False
  rotation_degrees: float = 0.0  # max random rotation, 0 = none
  input_size: int = IMAGE_SIZE  # px the network sees; images are resized to it
  weights: str = 'none'  # 'none', 'imagenet' or a path to a .h5/.weights.h5 file
  # 'random' (the builder's initialiser) or 'whitening': the first convolution
  # starts whitening patches of the training images (components/trainers/whitening.py)
  first_layer_init: str = 'random'
  # Serve the mean of the probabilities of the image and its left-right mirror
  # (test-time augmentation): the exported model, hence the Evaluator and every
  # prediction, runs the network twice per image.
  mirror_average: bool = False
  head_epochs: int = 0  # epochs training only the head on a frozen base
  fine_tune_lr_factor: float = 0.1  # learning rate of the full fine-tune phase
  require_weights: bool = False  # stop when the asked-for weights cannot be had
  gpus: int = 1  # GPUs requested per Trainer on Kubeflow
  # Device plan (components/trainers/device.py); forcing it is for tests and
  # for trying a GPU worker's plan on a CPU, never on by default (the `cpu`
  # preset's native_bfloat16 is an 'auto' that also uses a CPU's bfloat16).
  devices: str = 'auto'  # 'auto' (what is visible), 'cpu', 'emulated:N' (N logical CPUs as N GPUs)
  policy: str = 'auto'  # 'auto', 'native_bfloat16', 'float32', 'mixed_bfloat16', 'mixed_float16'
  jit_compile: str = 'auto'  # XLA: 'auto' (one accelerator only), 'true', 'false'
  steps_per_execution: int = 0  # 0 = auto (32 on one accelerator, else 1)
  seed: int = 42
