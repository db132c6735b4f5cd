"""Only so that building the client leaves nothing in the checkout: setuptools builds in ``./build`` by default,
which a non-editable ``pip install ./clients/python`` (or ``pip wheel``) would leave behind as an untracked
``clients/python/build/``. Here it builds in a temporary directory, removed when the build ends. Everything
else is in pyproject.toml."""

import atexit
import shutil
import tempfile

from setuptools import setup
from setuptools.command.build import build


class BuildOutsideTheCheckout(build):
    def initialize_options(self) -> None:
        super().initialize_options()
        self.build_base = tempfile.mkdtemp(prefix="wa-gateway-client-build-")
        atexit.register(shutil.rmtree, self.build_base, True)


setup(cmdclass={"build": BuildOutsideTheCheckout})
