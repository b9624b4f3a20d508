# Alert policies: what each means and the first three things to check are in docs/operations.md,
# linked from every policy's documentation.

locals {
  runbook        = "See docs/operations.md in the genmedia repository, section"
  run_service_in = join(" OR ", [for name in values(var.function_names) : "resource.labels.service_name=\"${name}\""])
}

resource "google_monitoring_alert_policy" "errors" {
  project               = var.project_id
  display_name          = "genmedia ${var.environment}: 5xx ratio"
  combiner              = "OR"
  notification_channels = var.notification_channels
  documentation {
    content   = "${local.runbook} \"5xx ratio\"."
    mime_type = "text/markdown"
  }
  conditions {
    display_name = "More than ${var.thresholds.error_ratio * 100}% of requests answered 5xx for 5 minutes"
    condition_threshold {
      filter             = "resource.type=\"cloud_run_revision\" AND (${local.run_service_in}) AND metric.type=\"run.googleapis.com/request_count\" AND metric.labels.response_code_class=\"5xx\""
      denominator_filter = "resource.type=\"cloud_run_revision\" AND (${local.run_service_in}) AND metric.type=\"run.googleapis.com/request_count\""
      comparison         = "COMPARISON_GT"
      threshold_value    = var.thresholds.error_ratio
      duration           = "300s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.labels.service_name"]
      }
      denominator_aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.labels.service_name"]
      }
    }
  }
}

resource "google_monitoring_alert_policy" "tick_stopped" {
  project               = var.project_id
  display_name          = "genmedia ${var.environment}: the tick has not run for 5 minutes"
  combiner              = "OR"
  notification_channels = var.notification_channels
  documentation {
    content   = "${local.runbook} \"Tick stopped\"."
    mime_type = "text/markdown"
  }
  conditions {
    display_name = "No tick_finished line for 5 minutes"
    condition_absent {
      filter   = "metric.type=\"${local.metric_prefix}/tick_runs\" AND resource.type=\"cloud_run_revision\""
      duration = "300s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
  depends_on = [google_logging_metric.counter]
}

resource "google_monitoring_alert_policy" "dead_letters" {
  project               = var.project_id
  display_name          = "genmedia ${var.environment}: dead-letter topic not empty"
  combiner              = "OR"
  notification_channels = var.notification_channels
  documentation {
    content   = "${local.runbook} \"Dead letters\"."
    mime_type = "text/markdown"
  }
  conditions {
    display_name = "Undelivered messages on ${var.dead_letter_subscription}"
    condition_threshold {
      filter          = "resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=\"${var.dead_letter_subscription}\" AND metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "60s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }
}

resource "google_monitoring_alert_policy" "batch_backlog" {
  project               = var.project_id
  display_name          = "genmedia ${var.environment}: batch items waiting too long"
  combiner              = "OR"
  notification_channels = var.notification_channels
  documentation {
    content   = "${local.runbook} \"Batch backlog\"."
    mime_type = "text/markdown"
  }
  conditions {
    display_name = "Oldest unacked batch message older than ${var.thresholds.oldest_unacked_s} s"
    condition_threshold {
      filter          = "resource.type=\"pubsub_topic\" AND resource.labels.topic_id=\"${var.batch_topic}\" AND metric.type=\"pubsub.googleapis.com/topic/oldest_unacked_message_age_by_region\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.thresholds.oldest_unacked_s
      duration        = "300s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }
}

# One policy per log-based counter that should stay near zero: a burst far above normal pages.
locals {
  rate_alerts = {
    quota_refusals = {
      metric    = "vertex_quota_refusals"
      title     = "Vertex AI refusing for quota far above normal"
      section   = "Quota refusals"
      threshold = var.thresholds.quota_refusals_rate
      duration  = "600s"
    }
    webhook_failures = {
      metric    = "webhook_failures"
      title     = "webhook deliveries failing"
      section   = "Webhook failures"
      threshold = var.thresholds.webhook_failure_rate
      duration  = "900s"
    }
    pool_exhausted = {
      metric    = "db_pool_exhausted"
      title     = "database pool exhausted"
      section   = "Pool exhausted"
      threshold = 0
      duration  = "300s"
    }
  }
}

resource "google_monitoring_alert_policy" "rate" {
  for_each = local.rate_alerts

  project               = var.project_id
  display_name          = "genmedia ${var.environment}: ${each.value.title}"
  combiner              = "OR"
  notification_channels = var.notification_channels
  documentation {
    content   = "${local.runbook} \"${each.value.section}\"."
    mime_type = "text/markdown"
  }
  conditions {
    display_name = "${each.value.metric} above ${each.value.threshold}/s"
    condition_threshold {
      filter          = "metric.type=\"${local.metric_prefix}/${each.value.metric}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = each.value.threshold
      duration        = each.value.duration
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
  depends_on = [google_logging_metric.counter]
}

resource "google_monitoring_alert_policy" "deferrals" {
  project               = var.project_id
  display_name          = "genmedia ${var.environment}: quota deferrals far above normal"
  combiner              = "OR"
  notification_channels = var.notification_channels
  documentation {
    content   = "${local.runbook} \"Quota deferrals\"."
    mime_type = "text/markdown"
  }
  conditions {
    display_name = "Mean calls deferred per model window above ${var.thresholds.deferrals_per_window} for 30 minutes"
    condition_threshold {
      filter          = "metric.type=\"${local.metric_prefix}/vertex_deferrals\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.thresholds.deferrals_per_window
      duration        = "1800s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_MEAN"
        cross_series_reducer = "REDUCE_MEAN"
        group_by_fields      = ["metric.labels.model"]
      }
    }
  }
  depends_on = [google_logging_metric.distribution]
}
