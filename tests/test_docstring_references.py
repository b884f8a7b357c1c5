"""Every Sphinx-style cross-reference in ``src/`` names an object that exists.

Docstrings say where to look (``see :mod:`.emails```); a module renamed or a function moved
leaves references that send a reader nowhere. Each ``:mod:``, ``:func:``, ``:class:``,
``:meth:``, ``:data:``, ``:attr:`` and ``:exc:`` reference is resolved the way a reader
would: against the module it is written in (its names, its classes' members), against its
package for a relative name (``.phones_fast``), or as an absolute dotted name.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from types import ModuleType

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "spotify_audience_sync"
REFERENCE = re.compile(r":(mod|func|class|meth|data|attr|exc):`~?([\w.]+)`")


def _modules() -> list[str]:
    names = []
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] != "__main__":  # importing it runs the CLI
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _is_module(dotted: str) -> bool:
    try:
        importlib.import_module(dotted)
    except ImportError:
        return False
    return True


def _lookup(dotted: str) -> bool:
    """Whether ``dotted`` is a module, or a module followed by attributes, that exists."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            fields = getattr(found, "__dataclass_fields__", {})
            annotations = getattr(found, "__annotations__", {})
            if hasattr(found, name):
                found = getattr(found, name)
            elif name in fields or name in annotations:  # a field without a class default
                found = None
            else:
                return False
        return True
    return False


def _resolves(reference: str, module: ModuleType, role: str = "func") -> bool:
    """Whether ``reference`` names something from ``module``; a ``:mod:`` must name a module
    by its import path (an alias such as ``_phonemeta`` for ``metadata`` does not count)."""
    is_package = hasattr(module, "__path__")
    package = module.__name__ if is_package else module.__name__.rpartition(".")[0]
    name = reference.lstrip(".")
    if reference.startswith("."):
        for _ in range(len(reference) - len(name) - 1):
            package = package.rpartition(".")[0]
        candidates = [f"{package}.{name}"]
    else:
        candidates = [name, f"{PACKAGE}.{name}", f"{package}.{name}"]
    if role == "mod":
        return any(_is_module(candidate) for candidate in candidates)
    # Also a name in this module, or a member of one of its classes (a method named in the
    # docstring of its class, as Sphinx resolves it).
    classes = [c for _, c in inspect.getmembers(module, inspect.isclass)]
    candidates += [f"{module.__name__}.{name}"]
    candidates += [f"{c.__module__}.{c.__qualname__}.{name}" for c in classes]
    return any(_lookup(candidate) for candidate in candidates)


@pytest.mark.parametrize("module_name", _modules())
def test_every_docstring_reference_resolves(module_name: str) -> None:
    module = importlib.import_module(module_name)
    text = inspect.getsource(module)
    found = REFERENCE.findall(text)
    broken = sorted({f":{role}:`{r}`" for role, r in found if not _resolves(r, module, role)})
    assert not broken, f"{module_name}: references to nothing: {broken}"


def test_a_broken_reference_is_found() -> None:
    """The check can fail: a name that does not exist is reported, an existing one is not."""
    module = importlib.import_module(f"{PACKAGE}.identifiers.normalize")
    assert _resolves(".emails", module)
    assert _resolves("hash_batch", module)
    assert _resolves("NormalizeOptions.gmail_canonical", module)
    assert not _resolves(".phones_fast", module, "mod")
    assert not _resolves("no_such_function", module)
    native = importlib.import_module(f"{PACKAGE}.identifiers.phones.native")
    assert _resolves(".metadata", native, "mod")
    assert not _resolves("._phonemeta", native, "mod")  # an alias, not a module's name
