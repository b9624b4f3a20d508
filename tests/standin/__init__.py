"""Stand-ins for Google APIs that speak their real HTTP protocols (Vertex AI, Cloud Storage uploads)."""
