# The environment's settings, declared once for every environment; the values live in
# environments/<env>.tfvars (also read by deploy.sh), the rules and validation in modules/settings.

variable "project_id" {
  type        = string
  description = "Google Cloud project that hosts the environment."
}

variable "region" {
  type        = string
  description = "Region of the functions, Cloud SQL, the bucket and the scheduler job (e.g. europe-west1)."
}

variable "name_prefix" {
  type        = string
  description = "Prefix of every resource name (functions, service accounts, topics, instance), e.g. genmedia-dev."
}

variable "runtime" {
  type        = string
  description = "Python runtime of the functions (gcloud --runtime)."
}

variable "log_level" {
  type        = string
  description = "LOG_LEVEL of every function."
}

variable "vertex_location" {
  type        = string
  description = "VERTEX_LOCATION: the Vertex AI region the functions call (may differ from region)."
}

variable "max_delivery_attempts" {
  type        = number
  description = "MAX_DELIVERY_ATTEMPTS of the batch function, and the dead-letter policy of its trigger subscription."
}

variable "output_retention_days" {
  type        = number
  description = "Days a generated file stays in the output bucket before the lifecycle rule deletes it."
}

variable "scheduler_cron" {
  type        = string
  description = "How often Cloud Scheduler calls POST /v1/schedules:tick (5-field cron; every minute is \"* * * * *\")."
}

variable "scheduler_time_zone" {
  type        = string
  description = "IANA time zone of scheduler_cron (the tick itself works in UTC; this only matters for non-minute crons)."
}

variable "api_key_pepper_version" {
  type        = number
  description = "The version of the API key pepper secret every function reads (API_KEY_PEPPER=<secret>:<version>), pinned so that all instances hash keys alike. 1 after the first apply; change it only to rotate on purpose."
}

variable "rate_limits" {
  type = object({
    window_seconds = number
    generate       = number
    batch_items    = number
    schedule       = number
    read           = number
  })
  description = "Per API key and window, shared by every instance (counted in PostgreSQL): RATE_LIMIT_WINDOW_SECONDS, RATE_LIMIT_GENERATE (generations), RATE_LIMIT_BATCH_ITEMS (items across batches), RATE_LIMIT_SCHEDULE (schedule writes), RATE_LIMIT_READ (GETs). 0 means unlimited. Given to generation and scheduling."
}

variable "db_tier" {
  type        = string
  description = "Cloud SQL machine tier, e.g. db-custom-1-3840 (1 vCPU, 3.75 GB)."
}

variable "db_version" {
  type        = string
  description = "Cloud SQL PostgreSQL major version."
}

variable "db_edition" {
  type        = string
  description = "Cloud SQL edition. ENTERPRISE takes db-custom-* tiers; ENTERPRISE_PLUS takes db-perf-optimized-N-* tiers."
}

variable "db_max_connections" {
  type        = number
  description = "Cloud SQL max_connections database flag: the budget every pool of every instance shares. Changing it restarts the instance."
}

variable "db_connection_reserve" {
  type        = number
  description = "Connections kept out of the functions' budget: superuser_reserved_connections (3), Cloud SQL's own admin connections, migrations and an operator's psql."
}

variable "db_iam_auth" {
  type        = bool
  description = "true: each function logs in as its own IAM database user (DB_IAM_AUTH=true, no password). false: they share the owner user, whose password comes from Secret Manager (DB_PASS)."
}

variable "db_availability_type" {
  type        = string
  description = "ZONAL (one zone) or REGIONAL (high availability, standby in another zone)."
}

variable "db_deletion_protection" {
  type        = bool
  description = "Refuse to delete the Cloud SQL instance (both in Terraform and in the Cloud SQL API)."
}

variable "db_disk_size_gb" {
  type        = number
  description = "Initial SSD size of the instance in GB (it grows automatically)."
}

variable "db_pool_timeout_seconds" {
  type        = number
  description = "DB_POOL_TIMEOUT: seconds a request waits for a pooled connection before answering 503."
}

variable "db_connect_timeout_seconds" {
  type        = number
  description = "DB_CONNECT_TIMEOUT: seconds to open one database connection."
}

variable "functions" {
  description = <<-EOT
    Per-function settings, keyed generation, batch, scheduling. memory and cpu as gcloud takes them
    ("512Mi", "1"); timeout_seconds (at most 540 for the event-driven batch function); min/max
    instances; concurrency = requests one instance serves at once (also FUNCTION_CONCURRENCY);
    ingress = all | internal-only | internal-and-gclb; db_pool_size / db_max_overflow override the
    pool derived from concurrency (pool = clamp(ceil(concurrency/2), 1, 5), overflow =
    clamp(concurrency - pool, 0, 5)). Who may call a function is not a setting: generation and
    scheduling are public and check API keys themselves, batch only takes its Eventarc trigger.
  EOT
  type = map(object({
    memory          = string
    cpu             = string
    timeout_seconds = number
    min_instances   = number
    max_instances   = number
    concurrency     = number
    ingress         = string
    db_pool_size    = optional(number)
    db_max_overflow = optional(number)
  }))
}

variable "notification_channels" {
  type        = list(string)
  description = "Monitoring notification channel ids (projects/P/notificationChannels/N) every alert notifies; [] for none."
}
