# No providers on purpose: this module only validates and derives values, so tests/infra can
# evaluate it with `terraform apply` offline and compare it with what deploy.sh computes.
terraform {
  required_version = ">= 1.5.0"
}
