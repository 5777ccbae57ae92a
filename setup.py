"""A build hook: the gRPC modules are generated from proto/ into zooserve/_proto/ before the package is built
(wheel or editable install). And the dependencies, read from the one pinned list that the Makefile and the
Dockerfile install (setuptools' own `file:` reading does not follow pip's `-r` includes, which
requirements.txt uses for the gateway's list). Everything else is in pyproject.toml."""

import runpy
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
GENERATOR = HERE / "zooserve" / "_proto" / "generate.py"


def requirements(name: str) -> list[str]:
    """The requirement lines of a pip requirements file, following its `-r` includes."""
    found = []
    for line in (HERE / name).read_text().splitlines():
        line = line.split(" #")[0].strip()
        if line.startswith("-r "):
            found += requirements(line[3:].strip())
        elif line and not line.startswith("#"):
            found.append(line)
    return found


class BuildPyWithProtos(build_py):
    def run(self):
        runpy.run_path(str(GENERATOR))["generate"]()
        super().run()


setup(
    cmdclass={"build_py": BuildPyWithProtos},
    install_requires=requirements("requirements.txt"),
    extras_require={"dev": requirements("requirements-dev.txt")},
)
