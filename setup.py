"""Ships the top-level conf/ inside the wheel as heatlens/conf, where heatlens.paths.CONFIG_DIR finds it.

Everything else about the package is in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithConfigs(build_py):
    def run(self) -> None:
        super().run()
        if not self.editable_mode:  # an editable install reads conf/ from the checkout
            self.copy_tree("conf", str(Path(self.build_lib) / "heatlens" / "conf"))


setup(cmdclass={"build_py": BuildPyWithConfigs})
