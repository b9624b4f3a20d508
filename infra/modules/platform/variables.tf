# Inputs come from infra/modules/settings, which validates them; this module only builds resources.

variable "project_id" {
  type        = string
  description = "Project that hosts the environment."
}

variable "region" {
  type        = string
  description = "Region of Cloud SQL, the bucket and the scheduler job (and of the functions deploy.sh deploys)."
}

variable "service_account_ids" {
  type        = map(string)
  description = "Account IDs keyed generation, batch, scheduling, scheduler, eventarc, builder (module.settings.service_account_ids)."
}

variable "names" {
  type        = map(string)
  description = "Names of topics, subscription, bucket, instance, database, owner user, secrets and scheduler job (module.settings.names)."
}

variable "functions" {
  type = map(object({
    name            = string
    service_account = string
    db_user         = string
    timeout_seconds = number
  }))
  description = "Per-function settings derived by module.settings (only the attributes the platform needs)."
}

variable "database" {
  type = object({
    tier                = string
    version             = string
    edition             = string
    max_connections     = number
    iam_auth            = bool
    availability_type   = string
    deletion_protection = bool
    disk_size_gb        = number
  })
  description = "Cloud SQL settings (module.settings.database)."
}

variable "output_retention_days" {
  type        = number
  description = "Days before the lifecycle rule deletes a generated file."
}

variable "scheduler" {
  type = object({
    cron                  = string
    time_zone             = string
    url_template          = string
    service_account_email = string
  })
  description = "When Cloud Scheduler calls POST /v1/schedules:tick, the scheduling function's URL with PROJECT_NUMBER still to replace (also the OIDC audience), and the job's service account (module.settings.scheduler)."
}

variable "api_key_pepper_functions" {
  type        = list(string)
  description = "Functions whose service accounts may read the API key pepper secret (module.settings.api_key_pepper_functions)."
}

variable "api_key_pepper_version" {
  type        = number
  description = "The version of the pepper secret deploy.sh pins in every function (module.settings.api_key_pepper_version)."
}
