"""The HTTP edge: routers per resource that translate requests into use-case calls and results into JSON."""
