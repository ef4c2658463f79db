"""Code fingerprints for TFX's cache, found from the import graph, not by hand.

Called by the component builders when the pipeline is assembled. Components
run as dotted import paths of installed code, and TFX's cache does not see a
change to that code; each custom node puts `code_fingerprint(module)` into
its parameters, a hash of every project module that `module` imports,
directly or through others, at module level or inside a function. A change
to any of them changes the parameter, so that node and everything downstream
of it re-run; the others stay cached.

Only imports written as statements are followed (`import a.b`, `from a
import b`); a module named in a string (importlib, a dotted `run_fn`) is a
root the caller passes.
"""

from __future__ import annotations

import ast
import hashlib
import pathlib

PACKAGES = ('components',)  # whose modules count; the rest is pinned in uv.lock
_ROOT = pathlib.Path(__file__).resolve().parents[1]  # holds the packages


def _is_project(name: str) -> bool:
  return name.split('.')[0] in PACKAGES


def _file(module: str) -> pathlib.Path | None:
  """The source of project `module`, found on disk (nothing is imported)."""
  base = _ROOT.joinpath(*module.split('.'))
  for path in (base.with_suffix('.py'), base / '__init__.py'):
    if path.is_file():
      return path
  return None


def _statements(tree: ast.Module, top_level_only: bool):
  if not top_level_only:
    yield from ast.walk(tree)
    return
  todo = list(tree.body)  # module-level code, including if/try blocks
  while todo:
    node = todo.pop()
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
      continue
    yield node
    todo += [c for c in ast.iter_child_nodes(node) if isinstance(c, ast.stmt)]


def _imported(module: str, path: pathlib.Path, top_level_only: bool) -> set[str]:
  """Project modules named by the import statements of `module`'s source."""
  package = module if path.name == '__init__.py' else module.rpartition('.')[0]
  found = set()
  tree = ast.parse(path.read_text(), str(path))
  for node in _statements(tree, top_level_only):
    if isinstance(node, ast.Import):
      found.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ''
      if node.level:
        parts = package.split('.')
        base = '.'.join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
      for alias in node.names:  # a submodule, else a name defined in `base`
        submodule = f'{base}.{alias.name}'
        found.add(submodule if _file(submodule) else base)
  return {name for name in found if _is_project(name) and _file(name)}


def closure(*roots: str) -> list[str]:
  """`roots` and every project module they import, transitively, sorted.

  An imported module counts whole (its functions may be called); a package
  that is only the parent of an imported module counts with what its
  module-level code imports (its `__init__` runs, its functions need not).
  """
  todo = [(root, False) for root in roots]
  seen: dict[str, bool] = {}  # module -> followed in full
  while todo:
    module, parent_only = todo.pop()
    if module in seen and (seen[module] or parent_only):
      continue
    path = _file(module)
    if path is None:
      raise ImportError(f'No source file for project module {module!r}.')
    seen[module] = not parent_only
    parts = module.split('.')
    todo += [('.'.join(parts[:i]), True) for i in range(1, len(parts))]
    todo += [(m, False) for m in sorted(_imported(module, path, parent_only))]
  return sorted(seen)


def code_fingerprint(*roots: str) -> str:
  """sha256 (16 hex digits) of the source of `closure(*roots)`."""
  digest = hashlib.sha256()
  for module in closure(*roots):
    digest.update(module.encode() + b'\0' + _file(module).read_bytes() + b'\0')
  return digest.hexdigest()[:16]
