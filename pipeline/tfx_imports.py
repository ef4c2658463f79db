"""`tfx.v1` without its Google Cloud extensions until something uses them.

Called by `pipeline.commands.prepare_imports` before a command imports TFX.
`tfx/v1/__init__.py` imports `tfx.v1.extensions`, and with it the Vertex AI
SDK (`google.cloud.aiplatform`): about 4 s of every command's start on 2
cores (`python -X importtime`), for components this pipeline never builds.
`defer_extensions` answers that first import with a stand-in module (an
import hook that steps aside after one use), which imports the real package
the first time one of its names is read: `tfx.v1.extensions.
google_cloud_ai_platform.Trainer`, `from tfx.v1.extensions import ...` and
imports of its submodules all still work (tests/pipeline/test_tfx_imports.py).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types

EXTENSIONS = 'tfx.v1.extensions'


class _Deferred(types.ModuleType):
  """Stands in for a package; reading a name it lacks imports the package.

  Dunder names other than `__all__` are answered without importing: tools
  that probe every module (`__wrapped__`, `__file__`...) must not pay for it.
  """

  def __getattr__(self, name: str):
    if name.startswith('__') and name != '__all__':
      raise AttributeError(name)
    if sys.modules.get(self.__name__) is self:
      del sys.modules[self.__name__]
    return getattr(importlib.import_module(self.__name__), name)


class _StandIn(importlib.abc.Loader):
  def create_module(self, spec):
    return _Deferred(spec.name)

  def exec_module(self, module) -> None:
    pass  # the package's own code runs when a name of it is first read


class _Finder(importlib.abc.MetaPathFinder):
  """Answers the first import of EXTENSIONS (made by `tfx.v1`'s __init__, or
  on the way to one of its submodules) with the stand-in, then steps aside."""

  done = False

  def find_spec(self, name, path, target=None):
    if name != EXTENSIONS or self.done:
      return None
    self.done = True
    spec = importlib.machinery.PathFinder.find_spec(name, path)
    if spec is None or not spec.submodule_search_locations:
      return None  # not the layout this was written for: the usual finders
    sys.meta_path.remove(self)  # safe here: the search stops at this spec
    spec.loader = _StandIn()  # keeps the real __path__ for submodules
    return spec


def defer_extensions() -> bool:
  """Installs the stand-in for the next import of TFX; False (and nothing
  done) when TFX is imported already or the stand-in is already waiting."""
  if ('tfx.v1' in sys.modules or EXTENSIONS in sys.modules
      or any(isinstance(f, _Finder) for f in sys.meta_path)):
    return False
  sys.meta_path.insert(0, _Finder())
  return True
