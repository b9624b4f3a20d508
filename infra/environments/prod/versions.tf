terraform {
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 8.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # State lives in a GCS bucket created once by hand (docs/deployment.md); pass it at init:
  #   terraform init -backend-config="bucket=<state bucket>"
  # The state holds the generated database password: keep that bucket private and versioned.
  backend "gcs" {
    prefix = "genmedia/prod"
  }
}
