"""Where the local services keep their jars, data, logs, pid files and locks."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from stream_app.settings import PROJECT_ROOT

LOCAL_DIR_ENV = "STREAM_APP_LOCAL_DIR"
DEFAULT_LOCAL_DIR = PROJECT_ROOT / ".local"


def local_dir() -> Path:
    """Return the folder that holds every local service's state.

    ``STREAM_APP_LOCAL_DIR`` overrides the default ``.local/`` at the project root.

    Returns:
        Absolute path; it may not exist yet.
    """
    override = os.environ.get(LOCAL_DIR_ENV, "").strip()
    if override:
        return Path(override).expanduser().resolve()
    return DEFAULT_LOCAL_DIR


@dataclass(frozen=True)
class ServicePaths:
    """Files and folders of one local service, e.g. ``.local/kafka/...``.

    Attributes:
        name: Short lower-case service name, used in file names.
        root: The service's own folder.
    """

    name: str
    root: Path

    @classmethod
    def for_service(cls, name: str, base: Path | None = None) -> ServicePaths:
        """Return the paths of service ``name`` under ``base`` (or local_dir())."""
        return cls(name=name, root=(base or local_dir()) / name)

    @property
    def data_dir(self) -> Path:
        """Folder for the server's data files."""
        return self.root / "data"

    @property
    def config_dir(self) -> Path:
        """Folder for rendered configuration files."""
        return self.root / "config"

    @property
    def logs_dir(self) -> Path:
        """Folder for the server's output and install logs."""
        return self.root / "logs"

    @property
    def log_file(self) -> Path:
        """The server process's stdout and stderr."""
        return self.logs_dir / f"{self.name}.log"

    @property
    def pid_file(self) -> Path:
        """JSON record of the running server: pid, host, port, start time."""
        return self.root / f"{self.name}.pid.json"

    @property
    def lock_file(self) -> Path:
        """Lock taken while installing, starting or stopping the server."""
        return self.root / f".{self.name}.lock"

    def create(self) -> None:
        """Create the folders if they are missing."""
        for folder in (self.root, self.data_dir, self.config_dir, self.logs_dir):
            folder.mkdir(parents=True, exist_ok=True)
