"""Importing the worker's code does nothing but import; ``worker.celery`` alone builds the app.

Each check runs in a fresh interpreter. Where nothing may read the settings, the environment
holds settings that do not validate, so a ``Settings()`` anywhere would raise.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

REPORT_SIDE_EFFECTS = """
import json, logging, sys
from celery import _state  # imported first: its registry of apps starts empty

def side_effects():
    metrics = sys.modules.get("worker.metrics")
    return {
        "celery_apps": len(list(_state._apps)),
        "log_handlers": len(logging.getLogger().handlers),
        "worker.celery imported": "worker.celery" in sys.modules,
        "metrics installed": bool(metrics and metrics._installed),
    }
"""
NONE = {
    "celery_apps": 0,
    "log_handlers": 0,
    "worker.celery imported": False,
    "metrics installed": False,
}


def _run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _unreadable_settings(tmp_path: Path) -> dict[str, str]:
    return {
        "GENQUEUE_API_PORT": "not-a-port",
        "GENQUEUE_LOG_LEVEL": "not-a-level",
        "GENQUEUE_WORKER_METRICS_PORT": "0",
        "GENQUEUE_DATA_DIR": str(tmp_path),
    }


def _side_effects_of(imports: str, tmp_path: Path) -> dict[str, object]:
    code = REPORT_SIDE_EFFECTS + imports + "\nprint(json.dumps(side_effects()))\n"
    done = _run(code, _unreadable_settings(tmp_path))
    assert done.returncode == 0, done.stderr
    found: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_importing_worker_upstream_has_no_side_effects(tmp_path: Path) -> None:
    assert _side_effects_of("import worker.upstream", tmp_path) == NONE


def test_importing_any_worker_module_but_worker_celery_has_no_side_effects(
    tmp_path: Path,
) -> None:
    imports = """
import importlib, pkgutil
import worker
modules = [m.name for m in pkgutil.walk_packages(worker.__path__, "worker.")]
assert "worker.tasks" in modules and "worker.lifecycle.poll" in modules, modules
for name in modules:
    if name != "worker.celery":
        importlib.import_module(name)
"""
    assert _side_effects_of(imports, tmp_path) == NONE


def test_the_settings_check_above_would_catch_a_read(tmp_path: Path) -> None:
    done = _run("import worker.celery", _unreadable_settings(tmp_path))
    assert done.returncode != 0
    assert "api_port" in done.stderr


def test_celery_dash_a_worker_finds_the_app_in_worker_celery(tmp_path: Path) -> None:
    env = {"GENQUEUE_DATA_DIR": str(tmp_path), "GENQUEUE_BROKER_URL": "redis://127.0.0.1:1/0"}
    code = """
from celery.app.utils import find_app
import worker.celery
app = find_app("worker")  # what `celery -A worker ...` does
assert app is worker.celery.app
print(sorted(name for name in app.tasks if name.startswith("generation.")))
"""
    done = _run(code, env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == str(
        [
            "generation.cancel",
            "generation.copy_media",
            "generation.deliver_webhooks",
            "generation.dispatch",
            "generation.poll_batch",
            "generation.reconcile",
            "generation.submit_many",
        ]
    )
    # The real command line, offline: `report` loads the app and prints its configuration.
    report = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "worker", "report"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report.returncode == 0, report.stderr
    assert "task_default_queue: 'genqueue'" in report.stdout
