"""Built-in metrics sources for the agent's conditions: ``http_json`` and ``sql_table``."""
