output "dashboard_id" {
  value       = google_monitoring_dashboard.genmedia.id
  description = "The dashboard, to open in the console."
}

output "log_metrics" {
  value = sort(concat(
    [for metric in google_logging_metric.counter : metric.name],
    [for metric in google_logging_metric.distribution : metric.name],
    [google_logging_metric.generation_requests.name],
  ))
  description = "Names of the log-based metrics this module defines."
}
