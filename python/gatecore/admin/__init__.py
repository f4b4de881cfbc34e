"""The admin API under /admin/v1/: keys, organizations, teams, users, the audit log, its OpenAPI."""
