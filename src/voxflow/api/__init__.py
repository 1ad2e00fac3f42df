"""The HTTP application: factory, middleware, health and metrics."""
