"""The local Redis server, from Debian's redis-server package, without persistence."""

from __future__ import annotations

import logging
import shutil
from datetime import timedelta
from pathlib import Path

import redis

from stream_app.errors import ServiceError
from stream_app.services.base import Progress, log_progress
from stream_app.services.endpoints import Endpoint, loopback_endpoint, parse_redis_url
from stream_app.services.packages import ensure_program
from stream_app.services.paths import ServicePaths
from stream_app.services.supervisor import LocalService
from stream_app.settings import Settings

logger = logging.getLogger(__name__)

PROBE_TIMEOUT = timedelta(seconds=1)
SECRETS_FILE_MODE = 0o600


def redis_command(
    program: str, endpoint: Endpoint, data_dir: Path, config_file: Path | None = None
) -> list[str]:
    """Return the command line of a foreground, memory-only Redis on ``endpoint``.

    Args:
        program: Path of ``redis-server``.
        endpoint: Loopback address and port.
        data_dir: Working folder of the server (it writes nothing there by default).
        config_file: Optional file with secrets (``requirepass``), read first so
            that no password shows in the process list.

    Returns:
        Program and arguments.
    """
    command = [program] if config_file is None else [program, str(config_file)]
    return [
        *command,
        "--bind",
        endpoint.host,
        "--port",
        str(endpoint.port),
        # Redis holds the system of record (baskets, history, seen event ids):
        # the append-only file brings all of it back after a restart, losing at
        # most one second of writes on a crash (fsync every second).
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--daemonize",
        "no",
        "--dir",
        str(data_dir),
    ]


class LocalRedis(LocalService):
    """A Redis server on loopback that keeps its data in memory only.

    Args:
        endpoint: Loopback address and port.
        paths: The service's folders, normally ``.local/redis``.
        progress: Receives human-readable progress lines.
        password: ``requirepass`` of the server, or None.
    """

    display_name = "Redis"
    process_marker = "redis-server"
    settings_env = "STREAM_APP_REDIS_URL"
    start_timeout = timedelta(seconds=20)
    stop_grace = timedelta(seconds=10)

    def __init__(
        self,
        endpoint: Endpoint,
        paths: ServicePaths,
        progress: Progress = log_progress,
        password: str | None = None,
    ) -> None:
        super().__init__(endpoint, paths, progress)
        self.password = password

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        progress: Progress = log_progress,
        base: Path | None = None,
    ) -> LocalRedis:
        """Build the server that ``settings.redis_url`` points at.

        Args:
            settings: Application settings; a loopback ``redis://`` URL.
            progress: Receives human-readable progress lines.
            base: Local state folder (default: ``local_dir()``).

        Raises:
            ServiceError: If the URL is invalid or not on loopback.
        """
        target = parse_redis_url(settings.redis_url)
        endpoint = loopback_endpoint(target.endpoint, "Redis")
        password = (
            settings.redis_password.get_secret_value()
            if settings.redis_password
            else None
        )
        return cls(
            endpoint, ServicePaths.for_service("redis", base), progress, password
        )

    def _install(self) -> None:
        found = ensure_program(
            "redis-server",
            "redis-server",
            self.paths.logs_dir / "install.log",
            self.progress,
        )
        self.progress(f"redis-server present at {found}")

    @property
    def secrets_file(self) -> Path:
        """Config file holding ``requirepass``, readable by the owner only."""
        return self.paths.config_dir / "secrets.conf"

    def _prepare(self) -> None:
        self.paths.data_dir.mkdir(parents=True, exist_ok=True)
        self.secrets_file.unlink(missing_ok=True)
        if self.password:
            self.secrets_file.touch(mode=SECRETS_FILE_MODE)
            self.secrets_file.write_text(
                f"requirepass {self.password}\n", encoding="utf-8"
            )

    def _command(self) -> list[str]:
        program = shutil.which("redis-server")
        if program is None:
            raise ServiceError(
                "redis-server is not installed; run `stream-app services install`."
            )
        secrets = self.secrets_file if self.password else None
        return redis_command(program, self.endpoint, self.paths.data_dir, secrets)

    def probe(self) -> bool:
        """Whether the server answers PING within PROBE_TIMEOUT."""
        client = redis.Redis(
            host=self.endpoint.host,
            port=self.endpoint.port,
            password=self.password,
            socket_timeout=PROBE_TIMEOUT.total_seconds(),
            socket_connect_timeout=PROBE_TIMEOUT.total_seconds(),
        )
        try:
            return bool(client.ping())
        except redis.RedisError as exc:
            logger.debug("redis probe failed endpoint=%s error=%r", self.endpoint, exc)
            return False
        finally:
            client.close()
