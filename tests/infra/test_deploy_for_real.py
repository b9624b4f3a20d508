"""The acceptance run: the real deploy.sh, not dry, from a clean shell, in both database auth modes.

`env -i` leaves deploy.sh PATH, HOME and the migration URL (the Cloud SQL Auth Proxy route of
docs/deployment.md) and nothing else, so nothing of the test session (GENERATION_BACKEND,
API_KEY_PEPPER, ...) can carry a step that would stop an operator. gcloud is a recording fake; make,
Alembic and the grant script are real, against a fresh database on the embedded PostgreSQL standing
in for Cloud SQL: owned by an ordinary login role, as Cloud SQL's `genmedia` owner is, with the
functions' IAM database users created as Cloud SQL creates them (login roles holding nothing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

from tests.conftest import DatabaseHandle
from tests.infra.harness import (
    BASH,
    FAKE_DB_PASSWORD,
    ROOT,
    DeployRun,
    edited_tfvars,
    env_vars,
    flags,
    make_fake_bin,
    recorded_calls,
)

FUNCTIONS = ("generation", "batch", "scheduling")
IAM_USERS = [f"genmedia-dev-{fn}@genmedia-dev.iam" for fn in FUNCTIONS]
MODES = ("iam", "password")
DML = ("SELECT", "INSERT", "UPDATE", "DELETE")


@dataclass
class StandIn:
    """A database on the embedded server playing the environment's Cloud SQL instance."""

    admin_url: str  # the server's superuser, for the test's own checks
    owner_url: str  # what deploy.sh migrates as (MIGRATION_DATABASE_URL)
    owner_password: str


def _tools_path() -> str:
    """The directories of the real tools deploy.sh and make use; never the real gcloud first."""
    dirs = [str(Path(found).parent) for tool in ("make", "env", "mktemp", "cp", "find")
            if (found := shutil.which(tool))]
    return os.pathsep.join(dict.fromkeys([*dirs, "/usr/bin", "/bin"]))


@contextmanager
def cloud_sql_stand_in(server_url: str, mode: str) -> Iterator[StandIn]:
    """A fresh, unmigrated database with its owner (and in IAM mode the functions' users), then gone."""
    suffix = uuid.uuid4().hex[:10]
    owner, name, password = f"deploy_owner_{suffix}", f"genmedia_deploy_{suffix}", f"pw{uuid.uuid4().hex}"
    users = IAM_USERS if mode == "iam" else []
    admin = sa.create_engine(server_url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE ROLE {owner} LOGIN PASSWORD '{password}'"))
        conn.execute(sa.text(f"CREATE DATABASE {name} OWNER {owner}"))
        for user in users:
            conn.execute(sa.text(f'DROP ROLE IF EXISTS "{user}"'))
            conn.execute(sa.text(f'CREATE ROLE "{user}" LOGIN'))
    url = sa.engine.make_url(server_url)
    try:
        yield StandIn(
            admin_url=url.set(database=name).render_as_string(hide_password=False),
            owner_url=url.set(username=owner, password=password, database=name).render_as_string(
                hide_password=False),
            owner_password=password,
        )
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))  # with the grants made in it
            for user in users:
                conn.execute(sa.text(f'DROP ROLE "{user}"'))
            conn.execute(sa.text(f"DROP ROLE {owner}"))
        admin.dispose()


def deploy_from_a_clean_shell(args: list[str], fake_bin: Path, migration_url: str) -> DeployRun:
    """./deploy.sh under `env -i`, with the recording gcloud first on PATH and the real make behind it."""
    home = fake_bin.parent / "home"
    home.mkdir()
    proc = subprocess.run(
        ["env", "-i", f"PATH={fake_bin}{os.pathsep}{_tools_path()}", f"HOME={home}",
         f"MIGRATION_DATABASE_URL={migration_url}", BASH, str(ROOT / "deploy.sh"), *args],
        cwd=home, capture_output=True, text=True, timeout=300, check=False,
    )
    return DeployRun(proc.returncode, proc.stdout, proc.stderr, recorded_calls(fake_bin))


@pytest.fixture(scope="module")
def deployments(
    test_database: DatabaseHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], tuple[DeployRun, StandIn]]]:
    """One real deploy of dev per database auth mode, on its own stand-in, made on first use."""
    done: dict[str, tuple[DeployRun, StandIn]] = {}
    with ExitStack() as stack:

        def deployed(mode: str) -> tuple[DeployRun, StandIn]:
            if mode not in done:
                cloud_sql = stack.enter_context(cloud_sql_stand_in(test_database.url, mode))
                tmp = tmp_path_factory.mktemp(f"real-deploy-{mode}")
                args = ["--env", "dev"]
                if mode == "password":
                    tfvars = edited_tfvars(tmp, "dev", {"db_iam_auth = true": "db_iam_auth = false"})
                    args += ["--config", str(tfvars)]
                fake_bin = make_fake_bin(tmp, tools=("gcloud",))
                done[mode] = (deploy_from_a_clean_shell(args, fake_bin, cloud_sql.owner_url), cloud_sql)
            return done[mode]

        yield deployed


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def deploy(deployments: Callable[[str], tuple[DeployRun, StandIn]], mode: str) -> DeployRun:
    return deployments(mode)[0]


@pytest.fixture
def cloud_sql(deployments: Callable[[str], tuple[DeployRun, StandIn]], mode: str) -> StandIn:
    return deployments(mode)[1]


def test_a_real_deploy_from_a_clean_shell_reaches_every_function(deploy: DeployRun, mode: str) -> None:
    assert deploy.returncode == 0, deploy.stderr[-3000:]
    deployed = {flags(argv)["entry-point"]: argv for argv in deploy.gcloud("functions", "deploy")}
    assert sorted(deployed) == sorted(FUNCTIONS)
    for argv in deployed.values():
        assert env_vars(argv)["DB_IAM_AUTH"] == ("true" if mode == "iam" else "false")
    lines = deploy.stderr.splitlines()
    migrate = next(i for i, line in enumerate(lines) if line.startswith("+ env ") and line.endswith(" migrate"))
    first_deploy = next(i for i, line in enumerate(lines) if line.startswith("+ gcloud functions deploy"))
    assert migrate < first_deploy
    assert ("grant_db_access.py" in deploy.stderr) == (mode == "iam")


def test_the_migrations_really_ran_on_the_stand_in_before_the_functions(deploy: DeployRun, cloud_sql: StandIn) -> None:
    assert deploy.returncode == 0, deploy.stderr[-3000:]
    head = ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini"))).get_current_head()
    engine = sa.create_engine(cloud_sql.admin_url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [head]
    engine.dispose()


def test_iam_users_may_read_and_write_every_table_and_nothing_more(
    deployments: Callable[[str], tuple[DeployRun, StandIn]],
) -> None:
    deploy, cloud_sql = deployments("iam")
    assert deploy.returncode == 0, deploy.stderr[-3000:]
    engine = sa.create_engine(cloud_sql.admin_url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        tables = conn.execute(sa.text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )).scalars().all()
        assert tables
        for user in IAM_USERS:
            for table in tables:
                def has(privilege: str, table: str = table, user: str = user) -> bool:
                    return bool(conn.execute(sa.text("SELECT has_table_privilege(:u, :t, :p)"),
                                             {"u": user, "t": f"public.{table}", "p": privilege}).scalar())
                assert all(has(p) for p in DML), (user, table)
                assert not has("TRUNCATE"), (user, table)
            assert not conn.execute(sa.text("SELECT has_table_privilege(:u, 'public.alembic_version', 'UPDATE')"),
                                    {"u": user}).scalar()
            assert not conn.execute(sa.text("SELECT has_schema_privilege(:u, 'public', 'CREATE')"),
                                    {"u": user}).scalar()
    engine.dispose()


def test_no_password_reaches_a_command_line_or_the_output(deploy: DeployRun, cloud_sql: StandIn) -> None:
    every_argv = [arg for call in deploy.calls for arg in call["argv"]]
    for secret in (cloud_sql.owner_password, FAKE_DB_PASSWORD):
        assert not [arg for arg in every_argv if secret in arg]
        assert secret not in deploy.stdout + deploy.stderr
    assert deploy.gcloud("secrets") == []  # the migration URL carries its own credentials
