"""The suite's own gaps, closed: each new test fails on a backend broken on purpose.

Each case runs one contract test with pytester twice: on the broken backend, where it
must fail and name the clause and the primitive, and on a correct one, where it passes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SUITE = """
import uuid

import pytest

from broken_backends import {factory}, {backend}
from storage_core.testing import StorageContract


class TestCase(StorageContract):
    supports_processes = {processes}
    streaming_keys = 800  # one file per key: enough to tell a page from the whole folder
    valid_options = {{"space": "x"}}

    @pytest.fixture
    def storage_factory(self, tmp_path):
        return {factory}({backend}, {where})
"""

CASES = {
    "streaming": (
        "test_iter_keys_yields_before_reading_every_key",
        ("ListsEveryKey", "FileStorage"),
        "FileFactory",
        "[keys] _iter_keys streams: it yields its first key before it has read the whole keyspace "
        "(primitive: _iter_keys)",
        "_iter_keys allocated",
    ),
    "options": (
        "test_unknown_option_is_refused",
        ("IgnoresUnknownOptions", None),
        "MemoryFactory",
        "[lifecycle] from_options refuses an unknown option with a ConfigError naming it (primitive: from_options)",
        "DID NOT RAISE",
    ),
    "atomic": (
        "test_write_many_is_atomic_where_declared",
        ("ClaimsAtomicWriteMany", None),
        "MemoryFactory",
        "(primitive: _write_many)",
        "half of one write_many",
    ),
    "torn": (
        "test_a_killed_writer_leaves_no_torn_value",
        ("TornFileStorage", "FileStorage"),
        "FileFactory",
        "[concurrency] a writer killed mid-write leaves no torn value: each key holds a whole value, the old or "
        "the new (primitive: _write, _write_many)",
        "",
    ),
}


def _run(pytester: pytest.Pytester, test: str, backend: str, factory: str) -> pytest.RunResult:
    where = "uuid.uuid4().hex" if factory == "MemoryFactory" else "str(tmp_path)"
    processes = backend.endswith("FileStorage")
    pytester.makepyfile(SUITE.format(factory=factory, backend=backend, where=where, processes=processes))
    return pytester.runpytest("-p", "no:cacheprovider", "-rs", "-k", test)


@pytest.mark.parametrize("case", list(CASES))
def test_the_broken_backend_fails_naming_the_clause_and_primitive(pytester: pytest.Pytester, case: str) -> None:
    test, (broken, _), factory, note, says = CASES[case]
    result = _run(pytester, test, broken, factory)
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert f"contract clause broken: {note}" in output or note in output, output[-3000:]
    assert says in output


@pytest.mark.parametrize("case", [case for case, (_, (_, good), *_) in CASES.items() if good is not None])
def test_the_same_test_passes_on_a_correct_backend(pytester: pytest.Pytester, case: str) -> None:
    test, (_, correct), factory, _, _ = CASES[case]
    result = _run(pytester, test, correct, factory)  # type: ignore[arg-type]
    result.assert_outcomes(passed=1)
    assert "contract clause broken" not in result.stdout.str()


def test_a_backend_without_the_capability_has_the_atomicity_test_skipped_by_name(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "test_write_many_is_atomic_where_declared", "MemoryStorage", "MemoryFactory")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*the backend does not declare Capability.ATOMIC_WRITE_MANY*"])


def test_without_options_to_start_from_the_options_test_is_skipped_saying_what_to_set(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        SUITE.format(
            factory="MemoryFactory", backend="MemoryStorage", where="uuid.uuid4().hex", processes=False
        ).replace('    valid_options = {"space": "x"}\n', "")
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs", "-k", "test_unknown_option_is_refused")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*set valid_options, or use config_factory*"])


def test_every_failure_of_the_suite_names_its_clause(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """Not only the new tests: any contract test that fails says which clause it held."""
    pytester.makepyfile(
        """
        from storage_core.testing import StorageContract
        from storage_core.testing._keys import KeysContract

        def test_every_test_carries_a_note():
            tests = [getattr(StorageContract, n) for n in dir(StorageContract) if n.startswith("test_")]
            assert len(tests) > 100
            assert all(t.__contract_note__.startswith("contract clause broken: [") for t in tests)
            assert KeysContract.test_read_absent_raises_key_not_found.__contract_note__ == (
                "contract clause broken: [keys] read absent raises key not found"
            )
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
