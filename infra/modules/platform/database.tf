# Cloud SQL for PostgreSQL. The owner user `genmedia` runs migrations; its password is generated here,
# stored only in Secret Manager (and, unavoidably, in the Terraform state: keep the state bucket
# private) and is never a variable or an output. With db_iam_auth the functions log in as their own
# IAM users instead and need no password at all.

resource "google_sql_database_instance" "main" {
  project          = var.project_id
  name             = var.names.sql_instance
  region           = var.region
  database_version = var.database.version

  deletion_protection = var.database.deletion_protection

  settings {
    tier                        = var.database.tier
    edition                     = var.database.edition
    availability_type           = var.database.availability_type
    disk_size                   = var.database.disk_size_gb
    disk_autoresize             = true
    deletion_protection_enabled = var.database.deletion_protection

    # The budget every pool shares: deploy.sh and module.settings refuse configurations whose
    # max_instances x (pool size + overflow) does not fit under it minus the reserve.
    database_flags {
      name  = "max_connections"
      value = tostring(var.database.max_connections)
    }

    dynamic "database_flags" {
      for_each = var.database.iam_auth ? [1] : []
      content {
        name  = "cloudsql.iam_authentication"
        value = "on"
      }
    }

    ip_configuration {
      # A public IP with no authorised networks: only the Cloud SQL connectors and the Auth Proxy,
      # which present a client certificate issued to an IAM principal, can connect.
      ipv4_enabled = true
      ssl_mode     = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"
    }

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
      start_time                     = "03:00"
    }

    insights_config {
      query_insights_enabled = true
    }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_sql_database" "genmedia" {
  project  = var.project_id
  instance = google_sql_database_instance.main.name
  name     = var.names.database
}

resource "random_password" "db_owner" {
  length = 32
  # Letters and digits only: the password also goes into DATABASE_URLs, where symbols need escaping.
  special = false
}

resource "google_sql_user" "owner" {
  project  = var.project_id
  instance = google_sql_database_instance.main.name
  name     = var.names.db_owner_user
  password = random_password.db_owner.result

  # It owns every table, and PostgreSQL users that own or were granted anything cannot be deleted
  # through the Cloud SQL API: `terraform destroy` forgets the user and deletes the instance instead.
  deletion_policy = "ABANDON"
}

resource "google_secret_manager_secret" "db_password" {
  project   = var.project_id
  secret_id = var.names.db_password_secret

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_version" "db_password" {
  secret      = google_secret_manager_secret.db_password.id
  secret_data = random_password.db_owner.result
}

# Password mode only: the functions read DB_PASS from this one secret (gcloud --set-secrets).
resource "google_secret_manager_secret_iam_member" "runtime" {
  for_each = var.database.iam_auth ? toset([]) : toset(local.runtime_functions)

  project   = var.project_id
  secret_id = google_secret_manager_secret.db_password.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.this[each.key].email}"
}

# IAM mode only: one database user per function. deploy.sh grants them DML on the tables after
# each migration (infra/scripts/grant_db_access.py); they own nothing and cannot change the schema.
resource "google_sql_user" "runtime" {
  for_each = var.database.iam_auth ? toset(local.runtime_functions) : toset([])

  project  = var.project_id
  instance = google_sql_database_instance.main.name
  name     = var.functions[each.key].db_user
  type     = "CLOUD_IAM_SERVICE_ACCOUNT"

  # Granted DML by grant_db_access.py, so the Cloud SQL API cannot delete it (as for the owner).
  deletion_policy = "ABANDON"

  depends_on = [google_service_account.this]
}
