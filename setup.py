"""Only a build hook: the gRPC modules are generated from proto/ into zooserve/_proto/ before the package is
built (wheel or editable install). Everything else is in pyproject.toml."""

import runpy
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

GENERATOR = Path(__file__).resolve().parent / "zooserve" / "_proto" / "generate.py"


class BuildPyWithProtos(build_py):
    def run(self):
        runpy.run_path(str(GENERATOR))["generate"]()
        super().run()


setup(cmdclass={"build_py": BuildPyWithProtos})
