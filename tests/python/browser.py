"""Headless Chromium (Debian's, installed by `make deps`) for the page tests:
a page's DOM once its scripts have run, and a screenshot of it."""

import shutil
import subprocess


def render(url, profile, screenshot, height=2200):
    """The DOM of `url` after its scripts ran (virtual time), and a PNG of it at `screenshot`."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "make deps installs Debian's chromium"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
             "--virtual-time-budget=15000", f"--window-size=1280,{height}"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", url], check=True, capture_output=True, text=True,
                         timeout=120).stdout
    subprocess.run([chromium, *flags, f"--screenshot={screenshot}", url], check=True, capture_output=True, timeout=120)
    return dom
