"""The chart library comes from the installed plotly wheel, through staticfiles: found by the
finder, copied (and hashed) by collectstatic for WhiteNoise, never from a CDN or the repo."""

import json
import subprocess
from pathlib import Path

from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.templatetags.static import static

from analytics.cockpit.staticfiles import PLOTLY_JS, PackageFileFinder

ROOT = Path(__file__).resolve().parents[2]


def test_plotly_js_is_found_inside_the_installed_package():
    found = finders.find(PLOTLY_JS)
    assert found and Path(found).parts[-3:] == ("plotly", "package_data", "plotly.min.js")
    assert PackageFileFinder().check() == []


def test_the_finder_lists_only_that_file():
    listed = [(path, storage.prefix) for path, storage in PackageFileFinder().list([])]
    assert listed == [("plotly.min.js", "analytics/vendor")]
    assert PackageFileFinder().find("analytics/vendor/other.js") is None
    assert PackageFileFinder().find("elsewhere/plotly.min.js", find_all=True) == []


def test_the_repository_carries_no_copy_of_the_library():
    tracked = subprocess.run(
        ["git", "ls-files", "*.js"],  # noqa: S607 - git from PATH, as make and CI use it
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert [p for p in tracked if "plotly" in p.lower()] == []


def test_collectstatic_copies_and_hashes_it_for_whitenoise(settings, tmp_path):
    # given the production storage (hashed names, compressed copies)
    settings.STATIC_ROOT = str(tmp_path)
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    # when the static files are collected
    call_command("collectstatic", "--noinput", verbosity=0)
    # then plotly.min.js is there under a hashed name, with its compressed copy
    manifest = json.loads((tmp_path / "staticfiles.json").read_text())["paths"]
    hashed = manifest[PLOTLY_JS]
    assert hashed != PLOTLY_JS and (tmp_path / hashed).stat().st_size > 1_000_000
    assert (tmp_path / (hashed + ".gz")).exists()
    assert manifest["analytics/cockpit.js"] and manifest["analytics/cockpit.css"]


def test_the_page_s_script_is_served(client):
    response = client.get(static(PLOTLY_JS))
    assert response.status_code == 200
    assert b"plotly.js" in b"".join(response.streaming_content)[:2000]
