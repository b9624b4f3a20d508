# The prod environment: the one place its settings live. Terraform reads it (make tf ENV=prod, with
# its state in prod.gcs.tfbackend) and deploy.sh reads it (./deploy.sh --env prod). Every value is
# stated; nothing relies on a default.

project_id  = "genmedia-prod"
region      = "europe-west1"
name_prefix = "genmedia-prod"

runtime               = "python312"
log_level             = "INFO"
vertex_location       = "us-central1"
max_delivery_attempts = 5
output_retention_days = 30
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

db_tier                    = "db-custom-4-16384"
db_version                 = "POSTGRES_16"
db_edition                 = "ENTERPRISE"
db_max_connections         = 400
db_connection_reserve      = 20
db_iam_auth                = true
db_availability_type       = "REGIONAL"
db_deletion_protection     = true
db_disk_size_gb            = 50
db_pool_timeout_seconds    = 5
db_connect_timeout_seconds = 10

# Pool budget: 20 x (4 + 4) + 30 x (2 + 2) + 3 x (2 + 2) = 292 connections, below 400 - 20 = 380.
functions = {
  generation = {
    memory          = "1Gi"
    cpu             = "1"
    timeout_seconds = 300
    min_instances   = 1
    max_instances   = 20
    concurrency     = 8
    ingress         = "all"
  }
  batch = {
    memory          = "1Gi"
    cpu             = "1"
    timeout_seconds = 540
    min_instances   = 0
    max_instances   = 30
    concurrency     = 4
    ingress         = "internal-only"
  }
  scheduling = {
    memory          = "512Mi"
    cpu             = "1"
    timeout_seconds = 300
    min_instances   = 0
    max_instances   = 3
    concurrency     = 4
    ingress         = "all"
  }
}
