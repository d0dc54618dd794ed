"""Every extra's dependencies resolve to Windows wheels (win_amd64, CPython 3.11 to 3.13).

Run by .ci/run on Linux, so that a new dependency without Windows wheels fails CI
(issue 18). Each extra's requirements are chosen as a Windows machine would choose them
(their environment markers evaluated for win32), then pip resolves them all for the
target platform with --only-binary=:all:, downloading metadata, installing nothing.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

VERSIONS = ("3.11", "3.12", "3.13")
# The test extra pulls empyrical-reloaded, whose peewee<3.17.4 ships no Windows wheel (its
# sdist installs as pure Python): users' extras are checked, not the tests' own.
SKIPPED = frozenset({"test"})
WINDOWS = {
    "sys_platform": "win32",
    "platform_system": "Windows",
    "os_name": "nt",
    "platform_machine": "AMD64",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}


def windows_requirements(pyproject: Path, version: str) -> list[str]:
    """The requirements of the package and of every extra but SKIPPED, on Windows."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    groups = {"": project.get("dependencies", []), **project["optional-dependencies"]}
    environment = {**WINDOWS, "python_version": version, "python_full_version": f"{version}.0"}
    chosen = set()
    for extra, items in groups.items():
        if extra in SKIPPED:
            continue
        for item in items:
            requirement = Requirement(item)
            if requirement.marker is None or requirement.marker.evaluate(
                {**environment, "extra": extra}
            ):
                requirement.marker = None
                chosen.add(str(requirement))
    return sorted(chosen)


def main() -> int:
    pyproject = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("pyproject.toml")
    failed = 0
    for version in VERSIONS:
        with tempfile.TemporaryDirectory() as target:
            ran = subprocess.run(
                [
                    sys.executable, "-m", "pip", "install", "--quiet", "--dry-run",
                    "--ignore-installed", "--only-binary=:all:", "--platform", "win_amd64",
                    "--python-version", version, "--implementation", "cp",
                    "--target", target, *windows_requirements(pyproject, version),
                ],
                capture_output=True,
                text=True,
                check=False,
            )  # fmt: skip
        print(f"CPython {version} win_amd64: {'ok' if ran.returncode == 0 else 'FAILED'}")
        if ran.returncode:
            failed += 1
            errors = [line for line in ran.stderr.splitlines() if line.startswith("ERROR")]
            print("\n".join(errors or ran.stderr.splitlines()[-20:]))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
