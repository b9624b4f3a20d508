"""The pool budget: every instance of every function together never exhausts Cloud SQL's connections."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import Settings
from tests.infra.harness import ENVIRONMENTS, edited_tfvars, load_deploy_config, run_deploy, tfvars_file

deploy_config = load_deploy_config()


def test_there_are_dev_and_prod_environments() -> None:
    assert {"dev", "prod"} <= set(ENVIRONMENTS)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_committed_environment_fits_its_pool_budget(env: str) -> None:
    config = deploy_config.load_environment(tfvars_file(env), env)
    total, available = config.pool_budget()
    assert total == sum(f.max_instances * (f.pool_size + f.max_overflow) for f in config.functions.values())
    assert total < available == config["db_max_connections"] - config["db_connection_reserve"]
    assert config["db_connection_reserve"] >= 10


@pytest.mark.parametrize(
    ("concurrency", "pool_size", "max_overflow"),
    [(c, None, None) for c in range(1, 41)] + [(8, 2, None), (8, None, 0), (3, 1, 1), (100, 7, 9)],
)
def test_pool_formula_is_the_one_the_functions_use(
    concurrency: int, pool_size: int | None, max_overflow: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DB_POOL_SIZE", "DB_MAX_OVERFLOW", "FUNCTION_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(
        function_concurrency=concurrency, db_pool_size=pool_size, db_max_overflow=max_overflow
    )
    assert deploy_config.derive_pool(concurrency, pool_size, max_overflow) == (
        settings.pool_size, settings.max_overflow,
    )


def test_deploy_refuses_a_config_over_the_pool_budget(tmp_path: Path, fake_bin: Path) -> None:
    tfvars = edited_tfvars(tmp_path, "dev", {"max_instances = 5\n": "max_instances = 50\n"})

    run = run_deploy(["--env", "dev", "--config", str(tfvars)], fake_bin)

    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("deploy.sh: pool budget exceeded in dev:")
    assert "must stay below db_max_connections 100 - db_connection_reserve 15 = 85" in lines[0]
    assert run.calls == []  # refused before any gcloud or make


def test_dry_run_refuses_a_config_over_the_pool_budget_too(tmp_path: Path, fake_bin: Path) -> None:
    tfvars = edited_tfvars(tmp_path, "prod", {"db_max_connections = 400": "db_max_connections = 100"})

    run = run_deploy(["--dry-run", "--env", "prod", "--config", str(tfvars)], fake_bin)

    assert run.returncode != 0
    assert "pool budget exceeded in prod" in run.stderr
    assert run.stdout == ""


def test_a_config_exactly_at_the_limit_is_refused() -> None:
    config = deploy_config.load_environment(tfvars_file("dev"), "dev")
    total, _ = config.pool_budget()
    values = dict(config.values, db_max_connections=total + config["db_connection_reserve"])
    at_limit = deploy_config.parse_environment("dev", values)

    with pytest.raises(deploy_config.ConfigError, match="pool budget exceeded"):
        deploy_config.check_pool_budget(at_limit)
