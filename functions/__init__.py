"""The three Cloud Functions; each imports only shared/ and its own folder."""
