"""Getting results back to callers: signed download links, lists, results files and cancelling.

Public entry points (import them from their modules; this package imports nothing, so it stays cheap):
- `shared.results.signing`: `Signer` (HMAC over purpose + object + expiry, keys derived per purpose from
  API_KEY_PEPPER), `signer_for(purpose)`, `InvalidSignatureError`, `ExpiredSignatureError`.
- `shared.results.downloads`: `mint_url(uri)` (no I/O) and `resolve_download(...)` behind
  `GET /v1/files/{object}`: the local file, or a redirect to a V4-signed Cloud Storage URL.
"""
