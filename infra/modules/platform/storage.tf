# Generated images and videos. Private (uniform access, public access prevention); files expire.

resource "google_storage_bucket" "outputs" {
  project  = var.project_id
  name     = var.names.output_bucket
  location = var.region

  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  lifecycle_rule {
    condition {
      age = var.output_retention_days
    }
    action {
      type = "Delete"
    }
  }

  # Uploads cut off half-way (an instance killed mid-write) stop costing after a day.
  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_project_service.enabled]
}

# The three functions write and read outputs; objectAdmin on this bucket only, never the project.
resource "google_storage_bucket_iam_member" "runtime" {
  for_each = toset(local.runtime_functions)

  bucket = google_storage_bucket.outputs.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.this[each.key].email}"
}
