"""The conformance suite: run it with pytest to prove a backend keeps the storage-core contract.

A backend author subclasses :class:`StorageContract` in a test module and supplies one
fixture, ``storage_factory``; see its docstring. Needs pytest (``storage-core[testing]``).
"""

import pytest

# Plain asserts in the suite should explain themselves; pytest only rewrites test modules
# unless told, and must be told before the modules are imported.
pytest.register_assert_rewrite(
    *(
        f"storage_core.testing.{name}"
        for name in (
            "_bulk",
            "_concurrency",
            "_consistency",
            "_expiry",
            "_keys",
            "_lifecycle",
            "_namespaces",
            "_values",
            "_versions",
        )
    )
)

from storage_core.testing._base import fresh_namespace  # noqa: E402
from storage_core.testing._samples import same_json  # noqa: E402
from storage_core.testing.contract import StorageContract  # noqa: E402
from storage_core.testing.factories import ConfigFactory, StorageFactory, config_factory  # noqa: E402

__all__ = ["ConfigFactory", "StorageContract", "StorageFactory", "config_factory", "fresh_namespace", "same_json"]
