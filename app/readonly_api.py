"""Read-only /api/v1 views (public-api.md §6). Placeholder until implemented."""


def register(app, engine) -> None:
    pass
