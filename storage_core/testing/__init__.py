"""The conformance suite: run it with pytest to prove a backend keeps the storage-core contract.

A backend author subclasses :class:`StorageContract` in a test module and supplies one
fixture, ``storage_factory``; see its docstring. Needs pytest (``storage-core[testing]``).
"""

import pkgutil

import pytest

# Plain asserts in the suite should explain themselves; pytest only rewrites test modules
# unless told, and must be told before the modules are imported. Every submodule, found
# rather than listed, so a new group of contract tests cannot be left out.
pytest.register_assert_rewrite(*(f"{__name__}.{module.name}" for module in pkgutil.iter_modules(__path__)))

from storage_core.testing._base import clause, fresh_namespace  # noqa: E402
from storage_core.testing._samples import same_json  # noqa: E402
from storage_core.testing.contract import StorageContract  # noqa: E402
from storage_core.testing.factories import ConfigFactory, StorageFactory, config_factory  # noqa: E402

__all__ = [
    "ConfigFactory",
    "StorageContract",
    "StorageFactory",
    "clause",
    "config_factory",
    "fresh_namespace",
    "same_json",
]
