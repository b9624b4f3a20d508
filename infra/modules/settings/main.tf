# Names and derived values of one environment. infra/scripts/deploy_config.py derives the same values
# for deploy.sh; tests/infra/test_terraform.py evaluates this module and checks they agree.

locals {
  function_ids = ["generation", "batch", "scheduling"]

  # One identity per function, plus Cloud Scheduler's (OIDC caller of :tick), the Eventarc trigger's
  # (pushes batch messages) and Cloud Build's (builds the function images).
  service_account_ids = {
    generation = "${var.name_prefix}-generation"
    batch      = "${var.name_prefix}-batch"
    scheduling = "${var.name_prefix}-scheduling"
    scheduler  = "${var.name_prefix}-scheduler"
    eventarc   = "${var.name_prefix}-eventarc"
    builder    = "${var.name_prefix}-builder"
  }
  service_account_emails = { for role, id in local.service_account_ids : role => "${id}@${var.project_id}.iam.gserviceaccount.com" }

  function_names = { for fn in local.function_ids : fn => "${var.name_prefix}-${fn}" }

  sql_instance = "${var.name_prefix}-pg"
  names = {
    batch_topic              = "${var.name_prefix}-batch"
    dead_letter_topic        = "${var.name_prefix}-batch-dead-letter"
    dead_letter_subscription = "${var.name_prefix}-batch-dead-letter"
    output_bucket            = "${var.project_id}-${var.name_prefix}-outputs"
    sql_instance             = local.sql_instance
    instance_connection_name = "${var.project_id}:${var.region}:${local.sql_instance}"
    database                 = "genmedia"
    db_owner_user            = "genmedia"
    db_password_secret       = "${var.name_prefix}-db-password"
    api_key_pepper_secret    = "${var.name_prefix}-api-key-pepper"
    scheduler_job            = "${var.name_prefix}-schedules-tick"
    # Custom role IDs take letters, digits, underscores and dots only.
    vertex_role_id = "${replace(var.name_prefix, "-", "_")}_vertex_caller"
  }

  # The functions that get API_KEY_PEPPER (gcloud --set-secrets) and secretAccessor on its secret:
  # exactly those whose start-up refuses to go on without it (shared/config.py startup_problem),
  # the two that check API keys and batch, which signs batch.completed webhooks (secrets derive from
  # the pepper). tests/infra checks this list against the code and deploy_config.py.
  api_key_pepper_functions = ["generation", "batch", "scheduling"]

  # The scheduling function's deterministic URL, https://<service>-<project number>.<region>.run.app.
  # The project number is only known with a provider (module.platform) or gcloud (deploy.sh): both
  # replace PROJECT_NUMBER in this one template. The result is the scheduler job's OIDC audience and
  # the function's SCHEDULER_AUDIENCE; the job POSTs to it plus /v1/schedules:tick.
  scheduling_url_template = "https://${local.function_names["scheduling"]}-PROJECT_NUMBER.${var.region}.run.app"

  # The database user each function logs in as: its IAM user (the service account email without
  # ".gserviceaccount.com", as Cloud SQL names it) or the shared owner with a password.
  db_users = { for fn in local.function_ids : fn => (
    var.db_iam_auth ? trimsuffix(local.service_account_emails[fn], ".gserviceaccount.com") : local.names.db_owner_user
  ) }

  # The pool formula of shared/config.py; deploy.sh sets the result explicitly (DB_POOL_SIZE,
  # DB_MAX_OVERFLOW) so the running code and this budget can never drift apart.
  functions = { for fn, f in var.functions : fn => merge(f, {
    name            = local.function_names[fn]
    service_account = local.service_account_emails[fn]
    db_user         = local.db_users[fn]
    pool_size       = coalesce(f.db_pool_size, max(1, min(5, ceil(f.concurrency / 2))))
    max_overflow = coalesce(f.db_max_overflow, max(0, min(5,
    f.concurrency - coalesce(f.db_pool_size, max(1, min(5, ceil(f.concurrency / 2)))))))
  }) }

  connections = { for fn, f in local.functions : fn => f.max_instances * (f.pool_size + f.max_overflow) }
  pool_budget = {
    total_connections = sum(values(local.connections))
    available         = var.db_max_connections - var.db_connection_reserve
    by_function       = local.connections
  }
}
