"""Settings for bench/tracking.py: the project's own, with a URLconf (bench/_tracking_urls.py)
that adds one bare view answering 204, so the peer runs in the same server, through the same
middleware."""

from __future__ import annotations

from config.settings import *  # noqa: F403

ROOT_URLCONF = "_tracking_urls"
