from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_default_sqlite_database_folder_is_created_on_a_fresh_checkout(tmp_path):
    """A fresh clone has no var/ (it is not in git): the embedded default must still migrate,
    load the demo and run the purge (PostgreSQL-only SQL on these paths broke `make run` once)."""
    var = tmp_path / "fresh" / "var"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["MAILWARDEN_VAR_DIR"] = str(var)
    env["MAILWARDEN_ENV_FILE"] = str(tmp_path / "no.env")
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (var / "mailwarden.sqlite3").exists()
    # the rest of `make run`'s setup on SQLite: demo data (with its expiry) and the purge
    for command in (
        ["seed_demo", "--no-progress"],
        ["purge_expired", "--dry-run", "--no-progress"],
    ):
        result = subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env={**env, "MAILWARDEN_MEDIA_ROOT": str(var / "media")},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, (command, result.stderr[-2000:])


def test_production_refuses_the_development_secret():
    env = {**os.environ, "DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": ""}
    env.pop("DJANGO_SECRET_KEY")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='config.settings'; django.setup()",
        ],
        cwd=ROOT,
        env={**env, "MAILWARDEN_ENV_FILE": "/nonexistent"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr
