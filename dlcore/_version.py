"""dlcore's version, in one place.

``pyproject.toml`` reads it for the package metadata (``[tool.setuptools.dynamic]``) and
``dlcore.__version__`` re-exports it, so an installed dlcore and a source tree without metadata
(``PYTHONPATH``, a copied folder) report the same version.
"""

__version__ = "0.1.0"
