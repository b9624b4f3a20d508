# SLOs for POST /v1/generations, on the generation_requests log-based metric.

resource "google_monitoring_custom_service" "generation" {
  project      = var.project_id
  service_id   = "genmedia-${var.environment}-generation"
  display_name = "genmedia ${var.environment}: POST /v1/generations"
}

resource "google_monitoring_slo" "availability" {
  project             = var.project_id
  service             = google_monitoring_custom_service.generation.service_id
  slo_id              = "availability"
  display_name        = "${var.slo.availability_goal * 100}% answered without a 5xx (28 days)"
  goal                = var.slo.availability_goal
  rolling_period_days = 28
  request_based_sli {
    good_total_ratio {
      bad_service_filter   = "metric.type=\"${local.metric_prefix}/generation_requests\" AND resource.type=\"cloud_run_revision\" AND metric.labels.status=monitoring.regex.full_match(\"5[0-9][0-9]\")"
      total_service_filter = "metric.type=\"${local.metric_prefix}/generation_requests\" AND resource.type=\"cloud_run_revision\""
    }
  }
  depends_on = [google_logging_metric.generation_requests]
}

resource "google_monitoring_slo" "latency" {
  project             = var.project_id
  service             = google_monitoring_custom_service.generation.service_id
  slo_id              = "latency"
  display_name        = "${var.slo.latency_goal * 100}% answered within ${var.slo.latency_seconds} s (28 days)"
  goal                = var.slo.latency_goal
  rolling_period_days = 28
  request_based_sli {
    distribution_cut {
      distribution_filter = "metric.type=\"${local.metric_prefix}/generation_requests\" AND resource.type=\"cloud_run_revision\""
      range {
        max = var.slo.latency_seconds
      }
    }
  }
  depends_on = [google_logging_metric.generation_requests]
}
