"""Input pictures: uploads, their checks, and media references (this package imports nothing, so it
stays cheap; import from the modules).

- `shared.uploads.images`: `inspect_image` (type and dimensions from the headers; bombs refused).
- `shared.uploads.store`: `store_for(settings)`, where upload bytes live (Cloud Storage or files).
- `shared.uploads.uploads`: the upload lifecycle (pending -> ready | rejected) and its API view.
- `shared.uploads.signing`: V4 signed PUT URLs of Cloud Storage, through IAM signBlob.
- `shared.uploads.references`: `resolve_inputs`, turning `{uri}`, `{upload_id}`, `{job_id, output}`
  into `{uri, mime_type}` after checking ownership, readiness and the model's limits.
"""
