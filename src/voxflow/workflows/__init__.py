"""Storage of workflow drafts and their immutable published versions."""
