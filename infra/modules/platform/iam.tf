# One service account per function, each with only what it uses. Grants on a single resource (topic,
# bucket, secret, instance) sit next to that resource's IAM here; the run.invoker grants on the
# functions themselves are made by deploy.sh, because the functions exist only once it has run.

locals {
  runtime_functions = ["generation", "batch", "scheduling"]

  service_account_purposes = {
    generation = "genmedia generation function: public API for generations and batches"
    batch      = "genmedia batch function: one Pub/Sub message per batch item"
    scheduling = "genmedia scheduling function: schedules and the :tick"
    scheduler  = "Cloud Scheduler: OIDC identity that calls the scheduling function's :tick"
    eventarc   = "Eventarc trigger: pushes batch-topic messages to the batch function"
    builder    = "Cloud Build: builds the three functions' images"
  }

  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  # Cloud SQL roles are limited to this one instance by an IAM condition.
  sql_roles = concat(["roles/cloudsql.client"], var.database.iam_auth ? ["roles/cloudsql.instanceUser"] : [])
  sql_bindings = { for pair in setproduct(local.runtime_functions, local.sql_roles) :
  "${pair[0]} ${pair[1]}" => { function = pair[0], role = pair[1] } }
}

resource "google_service_account" "this" {
  for_each = var.service_account_ids

  project      = var.project_id
  account_id   = each.value
  display_name = local.service_account_purposes[each.key]

  depends_on = [google_project_service.enabled]
}

resource "google_project_iam_member" "runtime_sql" {
  for_each = local.sql_bindings

  project = var.project_id
  role    = each.value.role
  member  = "serviceAccount:${google_service_account.this[each.value.function].email}"

  condition {
    title       = "only-${var.names.sql_instance}"
    description = "Cloud SQL access limited to the genmedia instance"
    expression  = "resource.name == 'projects/${var.project_id}/instances/${var.names.sql_instance}' && resource.service == 'sqladmin.googleapis.com'"
  }
}

# Vertex AI has no per-resource IAM: aiplatform.user is granted on the project.
resource "google_project_iam_member" "runtime_vertex" {
  for_each = toset(local.runtime_functions)

  project = var.project_id
  role    = "roles/aiplatform.user"
  member  = "serviceAccount:${google_service_account.this[each.key].email}"
}

resource "google_project_iam_member" "builder" {
  project = var.project_id
  role    = "roles/cloudbuild.builds.builder"
  member  = "serviceAccount:${google_service_account.this["builder"].email}"
}

# Pub/Sub signs the OIDC token of each push to the batch function as the Eventarc identity. Needed in
# projects created before April 2021; granted on that one account only, never on the project.
resource "google_service_account_iam_member" "pubsub_signs_for_eventarc" {
  service_account_id = google_service_account.this["eventarc"].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}
