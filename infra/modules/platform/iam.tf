# One service account per function, each with only what it uses. Grants on a single resource (topic,
# bucket, secret) sit next to that resource; the run.invoker bindings on the functions themselves
# are made (and pruned) by deploy.sh, because the functions exist only once it has run.

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

  pubsub_service_agent = "serviceAccount:${google_project_service_identity.agents["pubsub"].email}"

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

# Google's service agents, made now rather than on the API's first use, so that the grants below
# (and on the bucket and the dead-letter topic) never name an account that does not exist yet.
resource "google_project_service_identity" "agents" {
  provider = google-beta
  for_each = toset(["aiplatform", "pubsub"])

  project = var.project_id
  service = "${each.key}.googleapis.com"

  depends_on = [google_project_service.enabled]
}

# Vertex AI has no per-model IAM, so the grant is on the project; but only the one permission the
# functions use (predict, predictLongRunning, fetchPredictOperation and generateContent on publisher
# models all check it), not roles/aiplatform.user, which also manages datasets, endpoints and jobs.
resource "google_project_iam_custom_role" "vertex_caller" {
  project     = var.project_id
  role_id     = var.names.vertex_role_id
  title       = "genmedia Vertex AI caller (${var.names.vertex_role_id})"
  description = "Calls Vertex AI publisher models (Imagen, Gemini image, Veo) and nothing else."
  permissions = ["aiplatform.endpoints.predict"]
}

# All three call Vertex AI: generation and batch generate, the scheduling tick polls video operations.
resource "google_project_iam_member" "runtime_vertex" {
  for_each = toset(local.runtime_functions)

  project = var.project_id
  role    = google_project_iam_custom_role.vertex_caller.name
  member  = "serviceAccount:${google_service_account.this[each.key].email}"
}

# Spans go to Cloud Trace (TRACE_EXPORTER=gcp): writing them is all the agent role allows.
resource "google_project_iam_member" "runtime_trace" {
  for_each = toset(local.runtime_functions)

  project = var.project_id
  role    = "roles/cloudtrace.agent"
  member  = "serviceAccount:${google_service_account.this[each.key].email}"
}

# Download URLs (GCS V4 signed URLs) are signed by the generation function as itself through the IAM
# Credentials API (signBlob; iamcredentials.googleapis.com is enabled in apis.tf): it needs token
# creator on its own account, and on no other.
resource "google_service_account_iam_member" "generation_signs_as_itself" {
  service_account_id = google_service_account.this["generation"].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${google_service_account.this["generation"].email}"
}

# Cloud Build's role for building the function images. It can read every bucket of the project,
# which is why the Terraform state (it holds the DB password and the pepper) lives in a project of
# its own (docs/deployment.md, "Where the state lives").
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
