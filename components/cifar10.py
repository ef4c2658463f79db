"""CIFAR-10's constants: class names, image size, feature keys, splits, archive.

A leaf module (it imports nothing), in the manner of the TFX penguin
template's `features.py`: ingestion, validation, Transform, the trainers,
the selector's checks, the command line and the tests all read these names
from here, so each is spelled once.
"""

CLASS_NAMES = ('airplane', 'automobile', 'bird', 'cat', 'deer',
               'dog', 'frog', 'horse', 'ship', 'truck')  # label i = CLASS_NAMES[i]
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SIZE = 32  # px; CIFAR-10 images are 32x32
CHANNELS = 3  # RGB

IMAGE_KEY = 'image'  # tf.Example feature: encoded image bytes (PNG or JPEG)
LABEL_KEY = 'label'  # tf.Example feature: int64 class index, 0-9
ID_KEY = 'id'  # tf.Example feature: bytes, where the image came from

SPLITS = ('train', 'validation', 'test')  # what ingestion writes

OFFICIAL_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz'
OFFICIAL_MD5 = 'c58f30108f718f92721af3b95e74349a'  # published with the archive
