"""The admin REST API (admin-api.md). Built piece by piece; so far: `auth`, the login layer."""
