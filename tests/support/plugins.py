"""Install the example plugin package into this virtualenv, as a user would."""

from __future__ import annotations

import fcntl
import importlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "agentos-example-actions"
EXAMPLE_PACKAGE = "agentos-example-actions"


def install_example() -> str:
    """``pip install`` the example package into the running interpreter's
    environment (once per session) and return its installed version.

    The registries built before are dropped, so the web process's registry
    and the zygotes started from now on see the new entry points.
    """
    # Sessions running side by side (the two passes, pytest-xdist's workers)
    # share this virtualenv: one pip at a time, or one removes the files the
    # other is writing.
    with open(Path(sys.prefix) / ".agentos-example-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                str(EXAMPLE),
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
    importlib.invalidate_caches()
    from executors import registry as registry_module
    from executors import runner as runner_module
    from workflows import executor_config

    registry_module._cache.clear()
    executor_config.registry.cache_clear()
    # A zygote started before loaded the registry without the package; the
    # next run starts a fresh one.
    for runner in list(runner_module._live_runners):
        runner.close()
    return importlib.metadata.version(EXAMPLE_PACKAGE)
