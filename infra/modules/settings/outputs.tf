output "project_id" {
  description = "The environment's project."
  value       = var.project_id
}

output "region" {
  description = "The environment's region."
  value       = var.region
}

output "service_account_ids" {
  description = "Account IDs of the service accounts, keyed generation, batch, scheduling, scheduler, eventarc, builder."
  value       = local.service_account_ids
}

output "service_account_emails" {
  description = "Emails of the same service accounts."
  value       = local.service_account_emails
}

output "names" {
  description = "Names of the singleton resources (topics, bucket, instance, database, secrets, scheduler job)."
  value       = local.names
}

output "functions" {
  description = "Per-function settings with the derived name, service account, database user, pool size and overflow."
  value       = local.functions

  precondition {
    # The pool budget guard; deploy.sh applies the same rule before deploying anything.
    condition     = local.pool_budget.total_connections < local.pool_budget.available
    error_message = "Pool budget exceeded: the functions may open ${local.pool_budget.total_connections} connections (sum of max_instances x (pool size + overflow): ${jsonencode(local.connections)}), which must stay below db_max_connections ${var.db_max_connections} - db_connection_reserve ${var.db_connection_reserve} = ${local.pool_budget.available}. Lower max_instances or concurrency, or raise db_max_connections."
  }
}

output "pool_budget" {
  description = "Connections the functions may open at most, and how many Cloud SQL leaves them."
  value       = local.pool_budget
}

output "database" {
  description = "Cloud SQL settings."
  value = {
    tier                = var.db_tier
    version             = var.db_version
    edition             = var.db_edition
    max_connections     = var.db_max_connections
    iam_auth            = var.db_iam_auth
    availability_type   = var.db_availability_type
    deletion_protection = var.db_deletion_protection
    disk_size_gb        = var.db_disk_size_gb
  }
}

output "max_delivery_attempts" {
  description = "Pub/Sub delivery attempts before dead-lettering (and the batch function's MAX_DELIVERY_ATTEMPTS)."
  value       = var.max_delivery_attempts
}

output "output_retention_days" {
  description = "Days before generated files are deleted."
  value       = var.output_retention_days
}

output "scheduler" {
  description = "Cron and time zone of the :tick job, the scheduling function's URL template (PROJECT_NUMBER to be replaced; also the OIDC audience) and the job's service account."
  value = {
    cron                  = var.scheduler_cron
    time_zone             = var.scheduler_time_zone
    url_template          = local.scheduling_url_template
    service_account_email = local.service_account_emails["scheduler"]
  }
}

output "api_key_pepper_functions" {
  description = "Functions that get API_KEY_PEPPER from Secret Manager (and may read that secret)."
  value       = local.api_key_pepper_functions
}

output "api_key_pepper_version" {
  description = "The pinned version of the API key pepper secret (deploy.sh passes <secret>:<version>)."
  value       = var.api_key_pepper_version
}

output "rate_limits" {
  description = "RATE_LIMIT_* of the HTTP functions (generation and scheduling)."
  value       = var.rate_limits
}

output "notification_channels" {
  description = "Notification channels of every alert policy."
  value       = var.notification_channels
}
