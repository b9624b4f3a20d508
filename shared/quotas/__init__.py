"""Pacing Vertex AI calls to the project's quota (`VERTEX_QUOTAS`), fleet-wide, through PostgreSQL.

One budget per model, shared by every instance of every function: batch items wait in the database
and are published only once admitted (`queue`), synchronous generations take a reserved share
(`admission`), a Vertex 429 sends an item back to the queue and adapts the budget (`budget`).
Import the submodules: `shared.config` reads `spec` at start-up, and a cold start must not pay for
the database layer through this package.
"""
