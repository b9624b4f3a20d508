# What to watch: the names the platform module and deploy.sh give the functions and the dead-letter
# subscription, and who to tell.

variable "project_id" {
  type        = string
  description = "Project that hosts the environment."
}

variable "environment" {
  type        = string
  description = "Environment name, prefixed to every display name (dev, prod)."
}

variable "function_names" {
  type        = map(string)
  description = "Cloud Run service names of the functions, keyed generation, batch, scheduling."
}

variable "batch_topic" {
  type        = string
  description = "Topic id the batch items are published to."
}

variable "dead_letter_subscription" {
  type        = string
  description = "Subscription id of the dead-letter topic."
}

variable "notification_channels" {
  type        = list(string)
  default     = []
  description = "Notification channel ids (projects/P/notificationChannels/N) every alert notifies."
}

variable "thresholds" {
  type = object({
    error_ratio          = number # 5xx over all requests, per function, over 5 minutes
    quota_refusals_rate  = number # Vertex AI 429s per second, over 10 minutes, far above normal
    deferrals_per_window = number # calls pacing puts off per model window, on average over 30 minutes
    webhook_failure_rate = number # failed webhook attempts per second, over 15 minutes
    oldest_unacked_s     = number # age of the oldest undelivered batch item
  })
  default = {
    error_ratio          = 0.02
    quota_refusals_rate  = 0.5
    deferrals_per_window = 50
    webhook_failure_rate = 0.2
    oldest_unacked_s     = 1800
  }
  description = "Alert thresholds; the defaults suit a project on default Vertex AI quotas."
}

variable "slo" {
  type = object({
    availability_goal = number
    latency_goal      = number
    latency_seconds   = number
  })
  default = {
    availability_goal = 0.995
    latency_goal      = 0.95
    latency_seconds   = 30
  }
  description = "POST /v1/generations: the share answered without a 5xx, and the share answered within latency_seconds, over 28 days."
}
