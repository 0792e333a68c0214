"""citypair web: server-rendered pages that call the services' APIs through the gateway."""
