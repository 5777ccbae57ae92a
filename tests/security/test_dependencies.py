"""Dependencies are pinned, and `make audit` checks the pins for known vulnerabilities as docs/security.md says.

The audit itself needs PyPI's per-release advisory data, which our build machines cannot reach (only the
package index is proxied): it runs in `make audit`, not here. These tests check what can be checked offline:
every requirement is an exact pin, pip-audit is one of them, and the make target audits both files, fails
on a package it could not audit, and accepts exactly the advisories of the ignore list, each with a reason.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ("requirements-gateway.txt", "requirements.txt", "requirements-dev.txt")
# the one include allowed: the gateway's list (its image installs it alone) is part of requirements.txt
INCLUDES = {"requirements.txt": ["-r requirements-gateway.txt"]}
IGNORE_LIST = ROOT / "tests" / "security" / "pip-audit-ignore.txt"
ADVISORY_ID = re.compile(r"(PYSEC-\d{4}-\d+|GHSA(-[0-9a-z]{4}){3}|CVE-\d{4}-\d+|OSV-\d{4}-\d+)")


def requirements(name: str) -> list[tuple[int, str]]:
    lines = (ROOT / name).read_text().splitlines()
    return [(n, line.split(" #")[0].strip()) for n, line in enumerate(lines, 1)
            if line.strip() and not line.lstrip().startswith("#")]


@pytest.mark.parametrize("name", REQUIREMENTS)
def test_every_requirement_is_an_exact_pin(name):
    includes = [line for _, line in requirements(name) if line.startswith("-r ")]
    assert includes == INCLUDES.get(name, [])
    for number, line in requirements(name):
        if line in includes:
            continue
        assert not line.startswith("-"), f"{name}:{number}: options ({line}) would change what is installed"
        requirement = Requirement(line)
        (specifier,) = requirement.specifier  # exactly one: ==version
        assert specifier.operator == "==" and "*" not in specifier.version, f"{name}:{number}: {line}"


def test_pip_audit_is_pinned_for_development():
    pins = {Requirement(line).name for _, line in requirements("requirements-dev.txt")}
    assert "pip-audit" in pins


def make_audit(ignore_list: Path) -> list[str]:
    """The commands `make audit` would run with this ignore list (make -n: nothing is run)."""
    result = subprocess.run(["make", "-n", "audit", f"AUDIT_IGNORE={ignore_list}"], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    return [line for line in result.stdout.splitlines() if "pip-audit" in line or "pip freeze" in line]


def test_make_audit_audits_both_files_and_what_they_install():
    pinned, freeze, installed = make_audit(IGNORE_LIST)
    assert "-r requirements.txt" in pinned and "-r requirements-dev.txt" in pinned
    # the dependencies of the pins, at the versions installed from them
    written = re.search(r"pip freeze --exclude-editable > (\S+)", freeze).group(1)
    assert f"-r {written}" in installed
    for command in (pinned, installed):
        # --strict: a package the audit could not look up (no data) fails it, rather than passing unaudited
        assert "--strict" in command and "--vulnerability-service pypi" in command
        assert "--no-deps" in command  # exact pins: nothing is resolved or installed to audit them


def test_make_audit_accepts_exactly_the_ignore_list(tmp_path):
    ignore = tmp_path / "ignore.txt"
    ignore.write_text("# header\nGHSA-abcd-efgh-ijkl  # no fixed release beside torch 2.14.1\n\n"
                      "PYSEC-2099-7 # the vulnerable parser is never called\n")
    for command in make_audit(ignore)[::2]:
        assert re.findall(r"--ignore-vuln (\S+)", command) == ["GHSA-abcd-efgh-ijkl", "PYSEC-2099-7"]


def test_every_accepted_advisory_says_why():
    for number, line in enumerate(IGNORE_LIST.read_text().splitlines(), 1):
        entry, _, reason = line.partition("#")
        if entry.strip():
            assert ADVISORY_ID.fullmatch(entry.strip()), f"{IGNORE_LIST.name}:{number}: {entry.strip()!r}"
            assert len(reason.strip()) >= 10, f"{IGNORE_LIST.name}:{number}: say why it is accepted"
    assert make_audit(IGNORE_LIST)[0].count("--ignore-vuln") == sum(
        bool(line.partition("#")[0].strip()) for line in IGNORE_LIST.read_text().splitlines())
