# Set-up and entry points. `make run` and `make test` each set up the
# environment first (idempotent, seconds when already done).
#   make run ARGS="--preset quick --data ../shared/datasets/cifar10-jpeg.tar.gz"
#   make test [PYTEST_ARGS="-m 'not e2e'"]

# Python 3.10 (TFX 1.16's newest): from pyenv when present, else from PATH.
PY310 := $(shell for p in $$(pyenv root 2>/dev/null)/versions/3.10*/bin/python3.10 \
	$$(command -v python3.10 2>/dev/null); do \
	"$$p" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null \
	&& echo "$$p" && break; done)
UV := python3 -m uv
ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup run test
# --compile-bytecode: .pyc files written once at install (~30 s, then ~1 s a
# sync); where PYTHONDONTWRITEBYTECODE is set, as on these machines, every run
# would otherwise compile TensorFlow/TFX anew: a cached run took 34 s, not 14.
setup:
	@test -n "$(PY310)" || { echo "Python 3.10 not found: install it (e.g. pyenv install 3.10) and retry." >&2; exit 1; }
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install -q uv
	@$(UV) sync --frozen --extra s3 --compile-bytecode --python "$(PY310)"

run: setup
	.venv/bin/cifar10-tfx run $(ARGS)

test: setup
	.venv/bin/python -m pytest $(PYTEST_ARGS)
