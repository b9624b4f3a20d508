"""The layer every genmedia function imports: errors, logging, config, database, HTTP and events.

Importing this package has no side effects; submodules are imported where used so a cold start pays
only for what its function needs.
"""
