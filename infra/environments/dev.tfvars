# The dev environment: the one place its settings live. Terraform reads it (make tf ENV=dev, with
# its state in dev.gcs.tfbackend) and deploy.sh reads it (./deploy.sh --env dev). Every value is
# stated; nothing relies on a default.

project_id  = "genmedia-dev"
region      = "europe-west1"
name_prefix = "genmedia-dev"

runtime               = "python312"
log_level             = "DEBUG"
vertex_location       = "us-central1"
max_delivery_attempts = 5
output_retention_days = 7
notification_channels = []
scheduler_cron        = "* * * * *"
scheduler_time_zone   = "Etc/UTC"

# Every function reads this one version of the pepper secret Terraform made (1 after the first
# apply). Never add a version by hand: every API key issued so far would stop working.
api_key_pepper_version = 1

# Per API key, shared by every instance; 0 = unlimited. These are the code's defaults.
rate_limits = {
  window_seconds = 60
  generate       = 60
  batch_items    = 1000
  schedule       = 30
  read           = 600
}

db_tier                    = "db-custom-1-3840"
db_version                 = "POSTGRES_16"
db_edition                 = "ENTERPRISE"
db_max_connections         = 100
db_connection_reserve      = 15
db_iam_auth                = true
db_availability_type       = "ZONAL"
db_deletion_protection     = false
db_disk_size_gb            = 10
db_pool_timeout_seconds    = 5
db_connect_timeout_seconds = 10

# Pool budget: 5 x (4 + 4) + 5 x (2 + 2) + 2 x (2 + 2) = 68 connections, below 100 - 15 = 85.
functions = {
  generation = {
    memory          = "512Mi"
    cpu             = "1"
    timeout_seconds = 300
    min_instances   = 0
    max_instances   = 5
    concurrency     = 8
    ingress         = "all"
  }
  batch = {
    memory          = "512Mi"
    cpu             = "1"
    timeout_seconds = 540
    min_instances   = 0
    max_instances   = 5
    concurrency     = 4
    ingress         = "internal-only"
  }
  scheduling = {
    memory          = "512Mi"
    cpu             = "1"
    timeout_seconds = 300
    min_instances   = 0
    max_instances   = 2
    concurrency     = 4
    ingress         = "all"
  }
}
