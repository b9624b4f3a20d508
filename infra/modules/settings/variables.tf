# Every setting of one environment, typed and validated. The values live in
# infra/environments/<env>.tfvars, which deploy.sh reads too (infra/scripts/deploy_config.py, which
# applies every rule below as well, so that a bad file stops deploy.sh before anything runs).
# No variable has a default: the tfvars file states every value, so Terraform and deploy.sh cannot
# disagree about an unstated one.

variable "project_id" {
  type        = string
  description = "Google Cloud project that hosts the environment."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID: 6-30 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  type        = string
  description = "Region of the functions, Cloud SQL, the bucket and the scheduler job (e.g. europe-west1)."

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as europe-west1."
  }
}

variable "name_prefix" {
  type        = string
  description = "Prefix of every resource name (functions, service accounts, topics, instance), e.g. genmedia-dev."

  validation {
    # Service account IDs are at most 30 characters and the longest suffix is "-generation" (11).
    condition     = can(regex("^[a-z][a-z0-9-]{2,17}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 4-19 lowercase letters, digits or hyphens, starting with a letter (service account IDs add up to 11 characters and may not exceed 30)."
  }
}

variable "runtime" {
  type        = string
  description = "Python runtime of the functions (gcloud --runtime)."

  validation {
    condition     = contains(["python311", "python312"], var.runtime)
    error_message = "runtime must be python311 or python312."
  }
}

variable "log_level" {
  type        = string
  description = "LOG_LEVEL of every function."

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], var.log_level)
    error_message = "log_level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL."
  }
}

variable "vertex_location" {
  type        = string
  description = "VERTEX_LOCATION: the Vertex AI region the functions call (may differ from region)."

  validation {
    condition     = can(regex("^[a-z0-9-]+$", var.vertex_location))
    error_message = "vertex_location must be a Vertex AI location such as us-central1 or global."
  }
}

variable "max_delivery_attempts" {
  type        = number
  description = "MAX_DELIVERY_ATTEMPTS of the batch function, and the dead-letter policy of its trigger subscription."

  validation {
    # Pub/Sub dead-letter policies accept 5 to 100 attempts.
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100 && floor(var.max_delivery_attempts) == var.max_delivery_attempts
    error_message = "max_delivery_attempts must be a whole number from 5 to 100 (Pub/Sub's dead-letter limits)."
  }
}

variable "output_retention_days" {
  type        = number
  description = "Days a generated file stays in the output bucket before the lifecycle rule deletes it."

  validation {
    condition     = var.output_retention_days >= 1 && var.output_retention_days <= 3650 && floor(var.output_retention_days) == var.output_retention_days
    error_message = "output_retention_days must be a whole number from 1 to 3650."
  }
}

variable "notification_channels" {
  type        = list(string)
  description = "Monitoring notification channel ids (projects/P/notificationChannels/N) every alert notifies; [] for none."

  validation {
    condition     = alltrue([for c in var.notification_channels : can(regex("^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/notificationChannels/[0-9]+$", c))])
    error_message = "notification_channels must each be projects/PROJECT/notificationChannels/ID."
  }
}

variable "scheduler_cron" {
  type        = string
  description = "How often Cloud Scheduler calls POST /v1/schedules:tick (5-field cron; every minute is \"* * * * *\")."

  validation {
    condition     = length(split(" ", trimspace(var.scheduler_cron))) == 5
    error_message = "scheduler_cron must be a 5-field cron expression such as \"* * * * *\"."
  }
}

variable "scheduler_time_zone" {
  type        = string
  description = "IANA time zone of scheduler_cron (the tick itself works in UTC; this only matters for non-minute crons)."

  validation {
    condition     = can(regex("^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$", var.scheduler_time_zone))
    error_message = "scheduler_time_zone must be an IANA time zone such as Etc/UTC or Europe/Paris."
  }
}

variable "api_key_pepper_version" {
  type        = number
  description = "The version of the API key pepper secret every function reads (API_KEY_PEPPER=<secret>:<version>), pinned so that all instances hash keys alike. 1 after the first apply; change it only to rotate on purpose."

  validation {
    condition     = var.api_key_pepper_version >= 1 && floor(var.api_key_pepper_version) == var.api_key_pepper_version
    error_message = "api_key_pepper_version must be a whole number of at least 1 (a Secret Manager version; 1 after the first apply)."
  }
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

  validation {
    condition     = var.rate_limits.window_seconds >= 1 && var.rate_limits.window_seconds <= 3600 && floor(var.rate_limits.window_seconds) == var.rate_limits.window_seconds
    error_message = "rate_limits.window_seconds must be a whole number from 1 to 3600."
  }

  validation {
    condition = alltrue([for n in [var.rate_limits.generate, var.rate_limits.batch_items, var.rate_limits.schedule, var.rate_limits.read] :
    n >= 0 && floor(n) == n])
    error_message = "rate_limits.generate, batch_items, schedule and read must be whole numbers of at least 0 (0 = unlimited)."
  }
}

variable "db_tier" {
  type        = string
  description = "Cloud SQL machine tier, e.g. db-custom-1-3840 (1 vCPU, 3.75 GB)."

  validation {
    condition     = can(regex("^db-[a-z0-9-]+$", var.db_tier))
    error_message = "db_tier must be a Cloud SQL tier such as db-custom-1-3840."
  }
}

variable "db_version" {
  type        = string
  description = "Cloud SQL PostgreSQL major version."

  validation {
    condition     = contains(["POSTGRES_15", "POSTGRES_16", "POSTGRES_17"], var.db_version)
    error_message = "db_version must be POSTGRES_15, POSTGRES_16 or POSTGRES_17."
  }
}

variable "db_edition" {
  type        = string
  description = "Cloud SQL edition. ENTERPRISE takes db-custom-* tiers; ENTERPRISE_PLUS takes db-perf-optimized-N-* tiers."

  validation {
    condition     = contains(["ENTERPRISE", "ENTERPRISE_PLUS"], var.db_edition)
    error_message = "db_edition must be ENTERPRISE or ENTERPRISE_PLUS."
  }
}

variable "db_max_connections" {
  type        = number
  description = "Cloud SQL max_connections database flag: the budget every pool of every instance shares. Changing it restarts the instance."

  validation {
    condition     = var.db_max_connections >= 25 && var.db_max_connections <= 262143 && floor(var.db_max_connections) == var.db_max_connections
    error_message = "db_max_connections must be a whole number from 25 to 262143."
  }
}

variable "db_connection_reserve" {
  type        = number
  description = "Connections kept out of the functions' budget: superuser_reserved_connections (3), Cloud SQL's own admin connections, migrations and an operator's psql."

  validation {
    condition     = var.db_connection_reserve >= 10 && floor(var.db_connection_reserve) == var.db_connection_reserve
    error_message = "db_connection_reserve must be a whole number of at least 10 (3 superuser-reserved, Cloud SQL admin, migrations, one operator)."
  }
}

variable "db_iam_auth" {
  type        = bool
  description = "true: each function logs in as its own IAM database user (DB_IAM_AUTH=true, no password). false: they share the owner user, whose password comes from Secret Manager (DB_PASS)."
}

variable "db_availability_type" {
  type        = string
  description = "ZONAL (one zone) or REGIONAL (high availability, standby in another zone)."

  validation {
    condition     = contains(["ZONAL", "REGIONAL"], var.db_availability_type)
    error_message = "db_availability_type must be ZONAL or REGIONAL."
  }
}

variable "db_deletion_protection" {
  type        = bool
  description = "Refuse to delete the Cloud SQL instance (both in Terraform and in the Cloud SQL API)."
}

variable "db_disk_size_gb" {
  type        = number
  description = "Initial SSD size of the instance in GB (it grows automatically)."

  validation {
    condition     = var.db_disk_size_gb >= 10 && floor(var.db_disk_size_gb) == var.db_disk_size_gb
    error_message = "db_disk_size_gb must be a whole number of at least 10."
  }
}

variable "db_pool_timeout_seconds" {
  type        = number
  description = "DB_POOL_TIMEOUT: seconds a request waits for a pooled connection before answering 503."

  validation {
    condition     = var.db_pool_timeout_seconds > 0 && var.db_pool_timeout_seconds <= 120
    error_message = "db_pool_timeout_seconds must be more than 0 and at most 120."
  }
}

variable "db_connect_timeout_seconds" {
  type        = number
  description = "DB_CONNECT_TIMEOUT: seconds to open one database connection."

  validation {
    condition     = var.db_connect_timeout_seconds > 0 && var.db_connect_timeout_seconds <= 120
    error_message = "db_connect_timeout_seconds must be more than 0 and at most 120."
  }
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

  validation {
    condition     = length(var.functions) == 3 && length(setsubtract(keys(var.functions), ["generation", "batch", "scheduling"])) == 0
    error_message = "functions must have exactly the keys generation, batch and scheduling."
  }

  validation {
    condition     = alltrue([for f in values(var.functions) : can(regex("^[0-9]+(Mi|Gi)$", f.memory))])
    error_message = "functions.*.memory must be a size such as 512Mi or 1Gi."
  }

  validation {
    condition     = alltrue([for f in values(var.functions) : can(tonumber(f.cpu)) && try(tonumber(f.cpu) > 0 && tonumber(f.cpu) <= 8, false)])
    error_message = "functions.*.cpu must be a number of vCPUs from more than 0 to 8, written as a string (\"1\", \"0.5\")."
  }

  validation {
    condition     = alltrue([for f in values(var.functions) : f.timeout_seconds >= 1 && f.timeout_seconds <= 3600 && floor(f.timeout_seconds) == f.timeout_seconds])
    error_message = "functions.*.timeout_seconds must be a whole number from 1 to 3600."
  }

  validation {
    # Event-driven functions (gen2) are limited to 9 minutes.
    condition     = try(var.functions["batch"].timeout_seconds, 0) <= 540
    error_message = "functions.batch.timeout_seconds must be at most 540: the limit of an event-driven function."
  }

  validation {
    condition = alltrue([for f in values(var.functions) :
      f.min_instances >= 0 && f.max_instances >= 1 && f.min_instances <= f.max_instances &&
    floor(f.min_instances) == f.min_instances && floor(f.max_instances) == f.max_instances])
    error_message = "functions.*: min_instances and max_instances must be whole numbers with 0 <= min_instances <= max_instances and max_instances >= 1."
  }

  validation {
    condition     = alltrue([for f in values(var.functions) : f.concurrency >= 1 && f.concurrency <= 1000 && floor(f.concurrency) == f.concurrency])
    error_message = "functions.*.concurrency must be a whole number from 1 to 1000."
  }

  validation {
    # Cloud Run serves more than one request at a time only with at least one whole vCPU.
    condition     = alltrue([for f in values(var.functions) : f.concurrency == 1 || try(tonumber(f.cpu) >= 1, false)])
    error_message = "functions.*: a concurrency above 1 needs cpu of at least \"1\"."
  }

  validation {
    condition     = alltrue([for f in values(var.functions) : contains(["all", "internal-only", "internal-and-gclb"], f.ingress)])
    error_message = "functions.*.ingress must be all, internal-only or internal-and-gclb."
  }

  validation {
    # coalesce() because Terraform evaluates both sides of || (no short-circuit on null).
    condition = alltrue([for f in values(var.functions) :
      coalesce(f.db_pool_size, 1) >= 1 && coalesce(f.db_pool_size, 1) <= 100 &&
    coalesce(f.db_max_overflow, 0) >= 0 && coalesce(f.db_max_overflow, 0) <= 100])
    error_message = "functions.*: db_pool_size must be null or 1-100, db_max_overflow null or 0-100."
  }
}
