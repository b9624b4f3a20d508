# Log-based metrics over the metric facts the code logs (shared/telemetry/metrics.py): each fact is a
# log line whose jsonPayload.metric holds its name, labels and value. No SDK and no network at run time.
# tests/infra/test_observability.py checks every field named here against lines the code really writes.

locals {
  # fact name -> what it counts and the labels extracted from jsonPayload.metric
  counters = {
    jobs_finished = {
      fact        = "job_finished"
      description = "Jobs that reached succeeded, failed or cancelled."
      labels      = { model = "Vertex AI model id", kind = "image or video", status = "the final status" }
    }
    vertex_quota_refusals = {
      fact        = "vertex_quota_refused"
      description = "Calls Vertex AI refused for quota (HTTP 429)."
      labels      = { model = "Vertex AI model id" }
    }
    webhook_failures = {
      fact        = "webhook_failed"
      description = "Webhook delivery attempts that did not get a 2xx (retried or given up)."
      labels      = { event_type = "the event", outcome = "retry or failed", reason = "why, e.g. HTTP_500, TIMEOUT" }
    }
    db_pool_exhausted = {
      fact        = "db_pool_exhausted"
      description = "Checkouts that waited DB_POOL_TIMEOUT for a pooled connection in vain (answered 503)."
      labels      = {}
    }
    tick_runs = {
      fact        = "tick_finished"
      description = "Ticks that ran to the end; the tick alert fires when none arrive."
      labels      = {}
    }
  }
  # fact name -> the numeric field of jsonPayload.metric whose distribution is kept
  distributions = {
    generation_latency = {
      fact        = "job_finished"
      field       = "value"
      unit        = "s"
      description = "Seconds from a job's creation to its final status."
      labels      = { model = "Vertex AI model id", kind = "image or video", status = "the final status" }
    }
    vertex_deferrals = {
      fact        = "vertex_deferred"
      field       = "value"
      unit        = "1"
      description = "Calls put off to a later window by quota pacing, one value per model window."
      labels      = { model = "Vertex AI model id" }
    }
    db_checkout_wait = {
      fact        = "db_checkout_wait"
      field       = "value"
      unit        = "s"
      description = "Seconds a transaction waited for its connection, when over 50 ms."
      labels      = {}
    }
    tick_duration = {
      fact        = "tick_finished"
      field       = "value"
      unit        = "s"
      description = "Seconds one tick took."
      labels      = {}
    }
    schedules_fired = {
      fact        = "tick_finished"
      field       = "fired"
      unit        = "1"
      description = "Schedules one tick fired."
      labels      = {}
    }
  }
  metric_prefix = "logging.googleapis.com/user/genmedia"
}

resource "google_logging_metric" "counter" {
  for_each = local.counters

  project     = var.project_id
  name        = "genmedia/${each.key}"
  description = each.value.description
  filter      = "resource.type=\"cloud_run_revision\" AND jsonPayload.metric.name=\"${each.value.fact}\""

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    dynamic "labels" {
      for_each = each.value.labels
      content {
        key         = labels.key
        value_type  = "STRING"
        description = labels.value
      }
    }
  }
  label_extractors = { for key, _ in each.value.labels : key => "EXTRACT(jsonPayload.metric.${key})" }
}

resource "google_logging_metric" "distribution" {
  for_each = local.distributions

  project         = var.project_id
  name            = "genmedia/${each.key}"
  description     = each.value.description
  filter          = "resource.type=\"cloud_run_revision\" AND jsonPayload.metric.name=\"${each.value.fact}\""
  value_extractor = "EXTRACT(jsonPayload.metric.${each.value.field})"

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = each.value.unit
    dynamic "labels" {
      for_each = each.value.labels
      content {
        key         = labels.key
        value_type  = "STRING"
        description = labels.value
      }
    }
  }
  label_extractors = { for key, _ in each.value.labels : key => "EXTRACT(jsonPayload.metric.${key})" }

  bucket_options {
    # 10 ms to about 40 minutes in 30 buckets: tick milliseconds and video minutes on one scale.
    exponential_buckets {
      num_finite_buckets = 30
      growth_factor      = 1.5
      scale              = 0.01
    }
  }
}

# POST /v1/generations as clients see it, from the one httpRequest line each request logs (Cloud
# Logging lifts jsonPayload.httpRequest into the entry's httpRequest): the SLOs are computed on it.
resource "google_logging_metric" "generation_requests" {
  project         = var.project_id
  name            = "genmedia/generation_requests"
  description     = "POST /v1/generations: latency, by status code."
  filter          = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${var.function_names["generation"]}\" AND httpRequest.requestMethod=\"POST\" AND httpRequest.requestUrl=~\"^/v1/generations($|\\\\?)\""
  value_extractor = "EXTRACT(httpRequest.latency)"

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "s"
    labels {
      key         = "status"
      value_type  = "STRING"
      description = "HTTP status answered"
    }
  }
  label_extractors = { status = "EXTRACT(httpRequest.status)" }

  bucket_options {
    exponential_buckets {
      num_finite_buckets = 30
      growth_factor      = 1.5
      scale              = 0.01
    }
  }
}
