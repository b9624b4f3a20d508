# The one root module: the platform the three functions run on, for whichever environment the
# tfvars and backend files name (`make tf ENV=dev`, see docs/deployment.md). The functions themselves
# are deployed by deploy.sh (./deploy.sh --env dev), which reads the same environments/dev.tfvars.

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = {
    app         = "genmedia"
    environment = var.name_prefix
  }
}

# Only for google_project_service_identity (service agents made before they are granted anything).
provider "google-beta" {
  project = var.project_id
  region  = var.region
}

# Validates the environment and derives names, pool sizes and the pool budget (no providers, so the
# tests evaluate it offline with the real terraform binary).
module "settings" {
  source = "./modules/settings"

  project_id                 = var.project_id
  region                     = var.region
  name_prefix                = var.name_prefix
  runtime                    = var.runtime
  log_level                  = var.log_level
  vertex_location            = var.vertex_location
  max_delivery_attempts      = var.max_delivery_attempts
  output_retention_days      = var.output_retention_days
  scheduler_cron             = var.scheduler_cron
  notification_channels      = var.notification_channels
  scheduler_time_zone        = var.scheduler_time_zone
  api_key_pepper_version     = var.api_key_pepper_version
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

module "platform" {
  source = "./modules/platform"

  project_id               = module.settings.project_id
  region                   = module.settings.region
  service_account_ids      = module.settings.service_account_ids
  names                    = module.settings.names
  functions                = module.settings.functions
  database                 = module.settings.database
  output_retention_days    = module.settings.output_retention_days
  scheduler                = module.settings.scheduler
  api_key_pepper_functions = module.settings.api_key_pepper_functions
  api_key_pepper_version   = module.settings.api_key_pepper_version
}

# Log-based metrics, the dashboard, alert policies and SLOs (docs/operations.md says what each alert means).
module "observability" {
  source = "./modules/observability"

  project_id               = module.settings.project_id
  environment              = var.name_prefix
  function_names           = { for id, fn in module.settings.functions : id => fn.name }
  batch_topic              = module.settings.names.batch_topic
  dead_letter_subscription = module.settings.names.dead_letter_subscription
  notification_channels    = module.settings.notification_channels
  depends_on               = [module.platform]
}
