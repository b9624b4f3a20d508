# Cloud Scheduler calls POST /v1/schedules:tick on the scheduling function every minute, with an
# OIDC token for the scheduler service account. The function's deterministic Cloud Run URL is known
# before the function exists, so the job can be created first; it fails harmlessly until deploy.sh
# has deployed the function.
#
# :tick verifies that token itself: its audience must equal SCHEDULER_AUDIENCE and its email
# SCHEDULER_SERVICE_ACCOUNT, which deploy.sh sets from the same template (module.settings) and the
# same service account. (The scheduling function is public for this reason: Cloud Run would strip
# the token's signature if it checked IAM itself; module.settings enforces it.)

locals {
  scheduling_url = replace(var.scheduler.url_template, "PROJECT_NUMBER", data.google_project.this.number)
}

resource "google_cloud_scheduler_job" "tick" {
  project     = var.project_id
  region      = var.region
  name        = var.names.scheduler_job
  description = "Fires due genmedia schedules: POST /v1/schedules:tick on the scheduling function."
  schedule    = var.scheduler.cron
  time_zone   = var.scheduler.time_zone

  # Cloud Scheduler waits 15 s to 30 min for an HTTP answer; wait as long as the function may run.
  attempt_deadline = "${min(max(var.functions["scheduling"].timeout_seconds, 15), 1800)}s"

  # A tick is idempotent (same X-CloudScheduler-ScheduleTime) and the next one comes a minute later.
  retry_config {
    retry_count          = 1
    min_backoff_duration = "10s"
    max_backoff_duration = "30s"
  }

  http_target {
    http_method = "POST"
    uri         = "${local.scheduling_url}/v1/schedules:tick"
    headers = {
      "Content-Type" = "application/json"
    }
    body = base64encode("{}")

    oidc_token {
      service_account_email = google_service_account.this["scheduler"].email
      # Stated, not left to Cloud Scheduler's default (the whole URI, path included).
      audience = local.scheduling_url
    }
  }

  depends_on = [google_project_service.enabled]

  lifecycle {
    precondition {
      condition     = google_service_account.this["scheduler"].email == var.scheduler.service_account_email
      error_message = "The scheduler job's service account must be the SCHEDULER_SERVICE_ACCOUNT deploy.sh sets."
    }
  }
}
