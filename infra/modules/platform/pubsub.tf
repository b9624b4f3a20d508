# The batch topic and its dead letters. The subscription that feeds the batch function belongs to its
# Eventarc trigger, which `gcloud functions deploy --trigger-topic` creates; deploy.sh then sets that
# subscription's retry policy and dead-letter policy (max delivery attempts = max_delivery_attempts).

resource "google_pubsub_topic" "batch" {
  project = var.project_id
  name    = var.names.batch_topic

  depends_on = [google_project_service.enabled]
}

resource "google_pubsub_topic" "dead_letter" {
  project = var.project_id
  name    = var.names.dead_letter_topic

  depends_on = [google_project_service.enabled]
}

# Messages published to a topic without subscriptions are lost: this one keeps dead letters a week
# for an operator to read (gcloud pubsub subscriptions pull).
resource "google_pubsub_subscription" "dead_letter" {
  project = var.project_id
  name    = var.names.dead_letter_subscription
  topic   = google_pubsub_topic.dead_letter.id

  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }
}

# generation publishes batch items, scheduling publishes the runs of due schedules.
resource "google_pubsub_topic_iam_member" "batch_publishers" {
  for_each = toset(["generation", "scheduling"])

  project = var.project_id
  topic   = google_pubsub_topic.batch.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.this[each.key].email}"
}

# Pub/Sub itself forwards undeliverable messages to the dead-letter topic.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}
