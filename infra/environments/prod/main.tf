# One environment: the platform the three functions run on. The functions themselves are deployed by
# deploy.sh (./deploy.sh --env <this directory's name>), which reads the same terraform.tfvars.

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = {
    app         = "genmedia"
    environment = var.name_prefix
  }
}

module "platform" {
  source = "../../modules/platform"

  project_id               = module.settings.project_id
  region                   = module.settings.region
  service_account_ids      = module.settings.service_account_ids
  names                    = module.settings.names
  functions                = module.settings.functions
  database                 = module.settings.database
  output_retention_days    = module.settings.output_retention_days
  scheduler                = module.settings.scheduler
  api_key_pepper_functions = module.settings.api_key_pepper_functions
}
