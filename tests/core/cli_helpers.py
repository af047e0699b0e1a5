"""Running the ``storage`` command as a user does: the installed console script in a subprocess.

stdin is never a terminal here, so every run is the "piped" case: no colour, no live
progress, machine-readable output.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    @property
    def notes(self) -> list[str]:
        return self.err.splitlines()


def storage_script() -> str:
    """The ``storage`` console script of this interpreter's environment."""
    script = Path(sys.executable).parent / "storage"
    found = str(script) if script.exists() else shutil.which("storage")
    assert found, "the storage console script is not installed: pip install -e ."
    return found


def storage(
    *argv: str, cwd: Path, stdin: str | bytes | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> Result:
    """Run ``storage ARGV...`` in *cwd*; return its exit status and what it printed (as text)."""
    done = subprocess.run(
        [storage_script(), *argv],
        check=False,
        input=stdin.encode() if isinstance(stdin, str) else stdin,
        capture_output=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
    return Result(done.returncode, done.stdout.decode(), done.stderr.decode())
