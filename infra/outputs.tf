output "instance_connection_name" {
  description = "INSTANCE_CONNECTION_NAME of the Cloud SQL instance."
  value       = module.platform.instance_connection_name
}

output "service_accounts" {
  description = "Service account emails keyed generation, batch, scheduling, scheduler, eventarc, builder."
  value       = module.platform.service_accounts
}

output "batch_topic" {
  description = "PUBSUB_BATCH_TOPIC."
  value       = module.platform.batch_topic
}

output "dead_letter_subscription" {
  description = "Where undeliverable batch messages wait for an operator."
  value       = module.platform.dead_letter_subscription
}

output "output_bucket" {
  description = "OUTPUT_BUCKET."
  value       = module.platform.output_bucket
}

output "db_password_secret" {
  description = "Name of the Secret Manager secret with the owner user's password."
  value       = module.platform.db_password_secret
}

output "api_key_pepper_secret" {
  description = "Name of the Secret Manager secret with API_KEY_PEPPER (needed by `make api-key` against this environment)."
  value       = module.platform.api_key_pepper_secret
}

output "scheduling_url" {
  description = "Base URL Cloud Scheduler calls; also its OIDC audience and the scheduling function's SCHEDULER_AUDIENCE."
  value       = module.platform.scheduling_url
}

output "pool_budget" {
  description = "Connections the functions may open at most, and how many Cloud SQL leaves them."
  value       = module.settings.pool_budget
}
