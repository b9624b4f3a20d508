# Validates the environment and derives names, pool sizes and the pool budget (no providers).
module "settings" {
  source = "../../modules/settings"

  project_id                 = var.project_id
  region                     = var.region
  name_prefix                = var.name_prefix
  runtime                    = var.runtime
  log_level                  = var.log_level
  vertex_location            = var.vertex_location
  max_delivery_attempts      = var.max_delivery_attempts
  output_retention_days      = var.output_retention_days
  scheduler_cron             = var.scheduler_cron
  scheduler_time_zone        = var.scheduler_time_zone
  invoker_members            = var.invoker_members
  rate_limits                = var.rate_limits
  db_tier                    = var.db_tier
  db_version                 = var.db_version
  db_edition                 = var.db_edition
  db_max_connections         = var.db_max_connections
  db_connection_reserve      = var.db_connection_reserve
  db_iam_auth                = var.db_iam_auth
  db_availability_type       = var.db_availability_type
  db_deletion_protection     = var.db_deletion_protection
  db_disk_size_gb            = var.db_disk_size_gb
  db_pool_timeout_seconds    = var.db_pool_timeout_seconds
  db_connect_timeout_seconds = var.db_connect_timeout_seconds
  functions                  = var.functions
}
