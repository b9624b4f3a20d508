# What an operator needs to find things. No password and no secret value is ever an output.

output "instance_connection_name" {
  description = "INSTANCE_CONNECTION_NAME of the Cloud SQL instance."
  value       = google_sql_database_instance.main.connection_name
}

output "service_accounts" {
  description = "Service account emails keyed generation, batch, scheduling, scheduler, eventarc, builder."
  value       = { for role, sa in google_service_account.this : role => sa.email }
}

output "batch_topic" {
  description = "PUBSUB_BATCH_TOPIC (topic ID)."
  value       = google_pubsub_topic.batch.name
}

output "dead_letter_subscription" {
  description = "Pull subscription holding messages the batch function could not process."
  value       = google_pubsub_subscription.dead_letter.name
}

output "output_bucket" {
  description = "OUTPUT_BUCKET."
  value       = google_storage_bucket.outputs.name
}

output "db_password_secret" {
  description = "Secret Manager secret holding the owner user's password (its name, not its value)."
  value       = google_secret_manager_secret.db_password.secret_id
}

output "api_key_pepper_secret" {
  description = "Secret Manager secret holding API_KEY_PEPPER (its name, not its value)."
  value       = google_secret_manager_secret.api_key_pepper.secret_id
}

output "scheduling_url" {
  description = "URL Cloud Scheduler calls (plus /v1/schedules:tick); also its OIDC audience and SCHEDULER_AUDIENCE."
  value       = local.scheduling_url
}
