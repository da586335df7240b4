"""Session fixtures: real dependencies (env → testcontainers → embedded), a database, a running stack."""
from __future__ import annotations

import asyncio
import os

# a developer's `pos-ingest up` leaves .run/stack.env behind: tests never read it
os.environ["POS_INGEST_STACK_ENV"] = "/nonexistent"
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stack import Deps, Stack, database_url, drop_database, start_deps, start_stack


@pytest.fixture(scope="session")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pos-ingest")


@pytest.fixture(scope="session")
def deps(work_dir: Path) -> Iterator[Deps]:
    d = start_deps(work_dir / "deps")
    try:
        yield d
    finally:
        d.close()


@pytest.fixture(scope="session")
def database(deps: Deps) -> Iterator[str]:
    """A migrated database of this session's own."""
    from ingest.db.pool import migrate

    name = f"posingest_it_{uuid.uuid4().hex[:8]}"
    dsn = database_url(deps.pg_server, name)
    asyncio.run(migrate(dsn))
    try:
        yield dsn
    finally:
        asyncio.run(drop_database(deps.pg_server, name))


@pytest.fixture(scope="session")
def stack(deps: Deps, work_dir: Path) -> Iterator[Stack]:
    yield from start_stack(deps, work_dir)


@pytest.fixture
def settings_env(deps: Deps, database: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for in-process components: unique topic prefix and bucket per test."""
    suffix = uuid.uuid4().hex[:8]
    env = {"KAFKA_BOOTSTRAP_SERVERS": deps.kafka, "S3_ENDPOINT_URL": deps.s3, "DATABASE_URL": database,
           "TOPIC_PREFIX": f"it{suffix}.", "S3_BUCKET": f"it-{suffix}", "POS_INGEST_STACK_ENV": "/nonexistent"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env
