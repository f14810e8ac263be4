"""dlcore.backends and dlcore.benchmarks from a source checkout.

In the repository they are the top-level backends/ and benchmarks/ folders (pyproject's package-dir
installs them under dlcore). Python run inside a checkout imports this dlcore/ first, also after a plain
``pip install .``, and would find no dlcore.backends in it: a finder maps those two names (and only
them) to the checkout's folders, as an editable install's finder does. An installed dlcore (its
backends/ inside it) is left as it is.
"""

import importlib.abc
import importlib.util
import os
import sys
from importlib.machinery import ModuleSpec

_package = os.path.dirname(os.path.abspath(__file__))
_root = os.path.dirname(_package)
FOLDERS = {f"dlcore.{name}": os.path.join(_root, name) for name in ("backends", "benchmarks")}


class _CheckoutFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: object = None, target: object = None) -> ModuleSpec | None:
        folder = FOLDERS.get(name)
        if folder is None:
            return None
        init = os.path.join(folder, "__init__.py")
        return importlib.util.spec_from_file_location(name, init, submodule_search_locations=[folder])


if not os.path.isdir(os.path.join(_package, "backends")) and all(
    os.path.isfile(os.path.join(folder, "__init__.py")) for folder in FOLDERS.values()
):
    if not any(isinstance(finder, _CheckoutFinder) for finder in sys.meta_path):
        sys.meta_path.append(_CheckoutFinder())
