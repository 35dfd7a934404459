"""One module per resource: auth (sign in/out, OIDC), pages (HTML), api (/api/v1), admin."""
