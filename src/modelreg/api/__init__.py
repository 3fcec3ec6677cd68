"""The HTTP server: REST ``/api/v1`` over the service layer (thin routes, one error map)."""
