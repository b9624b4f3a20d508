"""Webhooks: tell the caller when a job or batch has finished, signed, retried, and safe to point anywhere.

- `ssrf`: is a URL safe to call, in every spelling of its host, and at send time on what it resolves to.
- `signing`: Standard Webhooks signatures with per-key secrets derived from API_KEY_PEPPER.
- `deliveries`: the outbox rows, made due in the transaction that finishes the work; retry schedule.
- `transport`: one POST to a checked address under one deadline, no redirects.
- `sender`: claim, render, sign, send, record, log (the dispatcher and the tick call it).
- `dispatch`: the first attempt right after commit, on a background thread.
- `api`: the `webhook_url` check, `GET /v1/webhooks/secret`, and `webhook` on jobs and batches.

Importing this package loads nothing.
"""
