# The API key pepper: the HMAC key every stored API key hash is made with (shared/apikeys.py). It is
# generated here and kept only in Secret Manager (and, unavoidably, in the Terraform state); it is
# never a variable or an output. deploy.sh hands it to the functions that need it as
# `--set-secrets API_KEY_PEPPER=<secret>:<api_key_pepper_version>`, never as a value: a pinned
# version, so that every instance of every function hashes keys with the same pepper even if a
# version is added later. Changing it invalidates every API key issued so far, so nothing here
# rotates it.

resource "random_password" "api_key_pepper" {
  length = 64
  # Letters and digits only: it is used as bytes, and operators pass it through shells and env vars.
  special = false
}

resource "google_secret_manager_secret" "api_key_pepper" {
  project   = var.project_id
  secret_id = var.names.api_key_pepper_secret

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_version" "api_key_pepper" {
  secret      = google_secret_manager_secret.api_key_pepper.id
  secret_data = random_password.api_key_pepper.result

  lifecycle {
    postcondition {
      # The version deploy.sh pins must be the one Terraform made, or no function could start.
      condition     = self.version == tostring(var.api_key_pepper_version)
      error_message = "The pepper secret's version is ${self.version}, but api_key_pepper_version in the tfvars says ${var.api_key_pepper_version}: set it to ${self.version} (deploy.sh pins that version in every function)."
    }
  }
}

# Only the functions that get API_KEY_PEPPER (module.settings.api_key_pepper_functions) may read it.
resource "google_secret_manager_secret_iam_member" "api_key_pepper" {
  for_each = toset(var.api_key_pepper_functions)

  project   = var.project_id
  secret_id = google_secret_manager_secret.api_key_pepper.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.this[each.key].email}"
}
