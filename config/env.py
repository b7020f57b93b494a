"""Reading settings from the environment, with the embedded defaults for a fresh machine.

Every setting of the platform comes from an environment variable (see `.env.example`).
When `DATABASE_URL` is not set, the platform starts its own PostgreSQL under `var/`
(the `pgserver` wheel ships the binaries); when `CELERY_BROKER_URL` is not set, Celery
uses kombu's filesystem transport under `var/`, which needs no server.
"""

import os
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("FISSION_VAR_DIR", BASE_DIR / "var")).resolve()

EMBEDDED_DB_NAME = "fission"


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


_embedded_server = None


def stop_embedded_database() -> None:
    """Stop the embedded PostgreSQL if this process started it and no other process uses it."""
    if _embedded_server is not None:
        _embedded_server.cleanup()


def embedded_database_url() -> str:
    """Start (or attach to) the embedded PostgreSQL in var/pgdata and return its URL.

    The server is stopped when the last process that attached to it exits. Child
    processes started by `make run` get the URL through DATABASE_URL and never attach.
    """
    import logging
    import warnings

    import psycopg

    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); /tmp is fine here.
        warnings.simplefilter("ignore")
        import pgserver  # imported lazily: only a machine without DATABASE_URL needs it

    logging.getLogger("pgserver").setLevel(logging.WARNING)

    VAR_DIR.mkdir(parents=True, exist_ok=True)
    global _embedded_server
    server = _embedded_server = pgserver.get_server(VAR_DIR / "pgdata", cleanup_mode="stop")
    info = server.get_postmaster_info()
    socket_dir = str(info.socket_dir) if info.socket_dir else ""
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [EMBEDDED_DB_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{EMBEDDED_DB_NAME}"')
    if socket_dir:
        return f"postgres://postgres@{quote(socket_dir, safe='')}/{EMBEDDED_DB_NAME}"
    return f"postgres://postgres@127.0.0.1:{info.port}/{EMBEDDED_DB_NAME}"


def database_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if url:
        return url
    url = embedded_database_url()
    # Processes started from this one (a Celery worker in a test, say) reuse the server.
    os.environ["DATABASE_URL"] = url
    return url


def broker_url() -> str:
    return os.environ.get("CELERY_BROKER_URL", "") or "filesystem://"


def filesystem_broker_options() -> dict:
    folder = VAR_DIR / "broker"
    (folder / "queue").mkdir(parents=True, exist_ok=True)
    (folder / "processed").mkdir(parents=True, exist_ok=True)
    (folder / "control").mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "store_processed": False,
        # Fanout exchange tables; kombu's default is ./control, in whatever the cwd is.
        "control_folder": str(folder / "control"),
    }
