"""Serve the chart library's JavaScript from the installed ``plotly`` wheel.

The cockpit's charts are drawn by plotly.js. The file comes from PyPI with the ``plotly``
package (``plotly/package_data/plotly.min.js``): the install step brings it, the repository
does not carry a copy and no page loads it from a CDN. This finder exposes that one file as
the static path ``analytics/vendor/plotly.min.js``, so ``collectstatic`` copies it (and
WhiteNoise hashes and compresses it) like any app's static file, and the test server finds it.
"""

from importlib.util import find_spec
from pathlib import Path

from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Error
from django.core.files.storage import FileSystemStorage

PREFIX = "analytics/vendor"
FILES = {"plotly.min.js": ("plotly", "package_data/plotly.min.js")}
PLOTLY_JS = f"{PREFIX}/plotly.min.js"


def _package_file(package: str, relative: str) -> Path | None:
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    return path if path.is_file() else None


class PackageFileFinder(BaseFinder):
    """Finds the few files of FILES inside installed packages, under PREFIX."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.files = {name: _package_file(*where) for name, where in FILES.items()}

    def check(self, **kwargs):
        return [
            Error(
                f"The static file {PREFIX}/{name} is missing: install the '{FILES[name][0]}' package.",
                hint="pip install -e . (pyproject.toml pins it).",
                id="analytics.E001",
            )
            for name, path in self.files.items()
            if path is None
        ]

    def find(self, path, find_all=False, **kwargs):
        prefix, _, name = path.rpartition("/")
        found = self.files.get(name) if prefix == PREFIX else None
        if found is None:
            return [] if find_all else None
        return [str(found)] if find_all else str(found)

    def list(self, ignore_patterns):
        for path in self.files.values():
            if path is None:
                continue
            storage = FileSystemStorage(location=str(path.parent))
            storage.prefix = PREFIX
            yield path.name, storage
