"""Cross-cutting plumbing shared by every domain: settings, database, errors, logging, ids."""
