terraform {
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 8.0"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = ">= 6.0, < 8.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # The bucket and prefix come from environments/<env>.gcs.tfbackend at init (`make tf ENV=<env>`
  # passes the file that belongs to the tfvars it uses). The state holds the generated database
  # password and API key pepper: keep that bucket private, versioned, and in a project of its own
  # (docs/deployment.md, "Where the state lives").
  backend "gcs" {}
}
