"""Programs the local services need, installed from Debian packages when missing."""

from __future__ import annotations

import logging
import os
import shutil
from datetime import timedelta
from pathlib import Path

from stream_app.errors import ServiceError
from stream_app.services.base import Progress
from stream_app.services.process import run_to_log

logger = logging.getLogger(__name__)

APT_TIMEOUT = timedelta(minutes=15)
_APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}


def _apt_get(arguments: list[str], log_file: Path) -> bool:
    command = ["apt-get", *arguments]
    return (
        run_to_log(command, log_file=log_file, timeout=APT_TIMEOUT, env=_APT_ENV) == 0
    )


def ensure_program(
    program: str, package: str, log_file: Path, progress: Progress
) -> str:
    """Return the path of ``program``, installing Debian ``package`` if it is missing.

    Installing needs root and apt-get. When the first install fails (often a stale
    or empty package list on a fresh machine) the lists are refreshed once.

    Args:
        program: Executable name looked up on PATH, e.g. ``"redis-server"``.
        package: Debian package that provides it.
        log_file: Receives apt-get's output.
        progress: Progress sink.

    Returns:
        Absolute path of the program.

    Raises:
        ServiceError: If the program is missing and cannot be installed.
    """
    found = shutil.which(program)
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ServiceError(
            f"{program} is not installed; install it with "
            f"`sudo apt-get install -y {package}` and retry."
        )

    progress(f"installing {package} from Debian packages...")
    if not _apt_get(["install", "-y", "--no-install-recommends", package], log_file):
        progress("refreshing the Debian package lists (apt-get update)...")
        _apt_get(["update"], log_file)
        _apt_get(["install", "-y", "--no-install-recommends", package], log_file)

    found = shutil.which(program)
    if found is None:
        raise ServiceError(
            f"apt-get could not install {package} (which provides {program}); "
            f"see {log_file}."
        )
    logger.info("installed package=%s program=%s", package, found)
    return found
