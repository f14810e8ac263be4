"""dlcore.backends and dlcore.benchmarks from a source checkout.

In the repository they are the top-level backends/ and benchmarks/ folders (pyproject's package-dir
installs them under dlcore). Python run inside a checkout imports this dlcore/ first, also after a plain
``pip install .``, and would find no dlcore.backends in it: the checkout's root joins the package's path.
An installed dlcore (its backends/ inside it) is left as it is.
"""

import os
import sys

_package = os.path.dirname(os.path.abspath(__file__))
_root = os.path.dirname(_package)
if not os.path.isdir(os.path.join(_package, "backends")) and os.path.isfile(
    os.path.join(_root, "backends", "__init__.py")
):
    sys.modules["dlcore"].__path__.append(_root)
