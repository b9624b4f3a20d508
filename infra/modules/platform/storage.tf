# Generated images and videos. Private (uniform access, public access prevention); files expire.
# Callers download them through V4 URLs the generation function signs (see iam.tf), never publicly.

resource "google_storage_bucket" "outputs" {
  project  = var.project_id
  name     = var.names.output_bucket
  location = var.region

  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  # The lifecycle rule already deletes outputs on purpose; the default 7-day soft delete would keep
  # paying for each of them a week longer. Deleted means deleted.
  soft_delete_policy {
    retention_duration_seconds = 0
  }

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

  # Pictures callers upload as inputs (uploads/<id>) are read within minutes of their upload; two days
  # leaves room for a batch or a retry, then they stop costing and stop being referable.
  lifecycle_rule {
    condition {
      age            = 2
      matches_prefix = ["uploads/"]
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}

# The three functions write, read and list outputs: objectUser (objects only, no IAM, no bucket
# settings) on this bucket only, never the project.
resource "google_storage_bucket_iam_member" "runtime" {
  for_each = toset(local.runtime_functions)

  bucket = google_storage_bucket.outputs.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.this[each.key].email}"
}

# Vertex AI works on this bucket as its service agent: Imagen and Veo write their outputs here
# themselves (`storageUri`: objectCreator), and read the images a request passes by gs:// URI (a
# first frame, an image to edit, reference images: objectViewer). Nothing else, and no other bucket.
resource "google_storage_bucket_iam_member" "vertex_agent" {
  for_each = toset(["roles/storage.objectCreator", "roles/storage.objectViewer"])

  bucket = google_storage_bucket.outputs.name
  role   = each.value
  member = "serviceAccount:${google_project_service_identity.agents["aiplatform"].email}"
}
