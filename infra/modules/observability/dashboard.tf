# One dashboard: requests, jobs, Vertex AI, the pool, the tick and Pub/Sub, two charts a row.

locals {
  charts = [
    { title = "Requests by function and status class", filter = "metric.type=\"run.googleapis.com/request_count\" AND resource.type=\"cloud_run_revision\" AND (${local.run_service_in})", aligner = "ALIGN_RATE", group = ["resource.labels.service_name", "metric.labels.response_code_class"] },
    { title = "POST /v1/generations latency (p95)", filter = "metric.type=\"${local.metric_prefix}/generation_requests\" AND resource.type=\"cloud_run_revision\"", aligner = "ALIGN_PERCENTILE_95", group = [] },
    { title = "Jobs finished by model and status", filter = "metric.type=\"${local.metric_prefix}/jobs_finished\" AND resource.type=\"cloud_run_revision\"", aligner = "ALIGN_RATE", group = ["metric.labels.model", "metric.labels.status"] },
    { title = "Generation latency by kind (p50)", filter = "metric.type=\"${local.metric_prefix}/generation_latency\" AND resource.type=\"cloud_run_revision\"", aligner = "ALIGN_PERCENTILE_50", group = ["metric.labels.kind"] },
    { title = "Vertex AI quota refusals by model", filter = "metric.type=\"${local.metric_prefix}/vertex_quota_refusals\" AND resource.type=\"cloud_run_revision\"", aligner = "ALIGN_RATE", group = ["metric.labels.model"] },
    { title = "Calls deferred by quota pacing, per window (mean)", filter = "metric.type=\"${local.metric_prefix}/vertex_deferrals\" AND resource.type=\"cloud_run_revision\"", aligner = "ALIGN_MEAN", group = [] },
    { title = "Webhook delivery failures by event and outcome", filter = "metric.type=\"${local.metric_prefix}/webhook_failures\" AND resource.type=\"cloud_run_revision\"", aligner = "ALIGN_RATE", group = ["metric.labels.event_type", "metric.labels.outcome"] },
    { title = "Database pool: exhausted checkouts", filter = "metric.type=\"${local.metric_prefix}/db_pool_exhausted\" AND resource.type=\"cloud_run_revision\"", aligner = "ALIGN_RATE", group = [] },
    { title = "Database pool: slow checkouts (p95 wait)", filter = "metric.type=\"${local.metric_prefix}/db_checkout_wait\" AND resource.type=\"cloud_run_revision\"", aligner = "ALIGN_PERCENTILE_95", group = [] },
    { title = "Tick duration (p95)", filter = "metric.type=\"${local.metric_prefix}/tick_duration\" AND resource.type=\"cloud_run_revision\"", aligner = "ALIGN_PERCENTILE_95", group = [] },
    { title = "Schedules fired per tick (p95)", filter = "metric.type=\"${local.metric_prefix}/schedules_fired\" AND resource.type=\"cloud_run_revision\"", aligner = "ALIGN_PERCENTILE_95", group = [] },
    { title = "Dead-letter backlog", filter = "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=\"${var.dead_letter_subscription}\"", aligner = "ALIGN_MAX", group = [] },
    { title = "Oldest unacked batch item (s)", filter = "metric.type=\"pubsub.googleapis.com/topic/oldest_unacked_message_age_by_region\" AND resource.type=\"pubsub_topic\" AND resource.labels.topic_id=\"${var.batch_topic}\"", aligner = "ALIGN_MAX", group = [] },
  ]
}

resource "google_monitoring_dashboard" "genmedia" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "genmedia ${var.environment}"
    mosaicLayout = {
      columns = 12
      tiles = [for index, chart in local.charts : {
        xPos   = (index % 2) * 6
        yPos   = floor(index / 2) * 4
        width  = 6
        height = 4
        widget = {
          title = chart.title
          xyChart = {
            dataSets = [{
              plotType = "LINE"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter = chart.filter
                  aggregation = merge(
                    { alignmentPeriod = "60s", perSeriesAligner = chart.aligner },
                    length(chart.group) > 0 ? { crossSeriesReducer = "REDUCE_SUM", groupByFields = chart.group } : {}
                  )
                }
              }
            }]
          }
        }
      }]
    }
  })
  depends_on = [google_logging_metric.counter, google_logging_metric.distribution, google_logging_metric.generation_requests]
}
