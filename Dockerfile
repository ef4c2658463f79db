# syntax=docker/dockerfile:1
# The image every Kubeflow node runs (`cifar10-tfx compile --image ...`).
#
# Base: the official TFX 1.16.0 image, which is Google's deep-learning
# container tf2-gpu.2-16 (CUDA, cuDNN, Python 3.10 in /opt/conda) with
# tensorflow 2.16.2, tfx 1.16.0 and kfp 2.5.0 installed, and Beam's worker
# boot program as its entrypoint. This project and its locked dependencies go
# into that same Python, so the `python -m tfx...kubeflow_v2_run_executor`
# command of every node finds TFX, GPU TensorFlow and the project's code.
#
#   docker build -t REGISTRY/cifar10-tfx:TAG .
#   docker push REGISTRY/cifar10-tfx:TAG
#
# Build it from the commit you compile the pipeline from: the spec's cache
# keys include fingerprints of this code (components/fingerprint.py).

ARG TFX_VERSION=1.16.0
ARG BEAM_VERSION=2.61.0

# Beam's SDK worker files for the Beam version in uv.lock, so that the image
# can also serve as the Dataflow or portable-runner worker
# (--sdk_container_image); the TFX image carries those of its own Beam (2.59).
FROM apache/beam_python3.10_sdk:${BEAM_VERSION} AS beam

FROM tensorflow/tfx:${TFX_VERSION}
ARG UV_VERSION=0.13.9
COPY --from=beam /opt/apache/beam /opt/apache/beam

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_NO_CACHE=1 \
    UV_COMPILE_BYTECODE=1

RUN python -m pip install "uv==${UV_VERSION}"

# pipeline/kubeflow.py (IMAGE_ROOT) expects the project here: the curated
# schema is read from /pipeline/data/schema.pbtxt.
WORKDIR /pipeline

# 1. The locked dependencies alone (this layer survives code changes). Hashes
#    from the lock are checked; packages the TFX image already has at the
#    locked version (tensorflow 2.16.2, tfx 1.16.0, kfp 2.5.0, ...) stay.
COPY pyproject.toml uv.lock ./
RUN uv export --frozen --no-dev --extra s3 --no-emit-project --format requirements.txt \
      --output-file /tmp/requirements.txt \
 && uv pip install --python "$(command -v python)" --break-system-packages \
      -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# 2. The project, editable so that its folder (with data/) stays /pipeline.
COPY . .
RUN uv pip install --python "$(command -v python)" --break-system-packages \
      --no-deps --editable . \
 && python -c "import tensorflow as tf, tensorflow_io, tfx, pipeline.pod, pipeline.kubeflow, components.selector; \
print('tensorflow', tf.__version__, 'built with CUDA', tf.test.is_built_with_cuda(), \
'| tfx', tfx.__version__)"

# The TFX image's entrypoint (Beam's boot) is kept; Kubeflow sets each node's
# command itself.
