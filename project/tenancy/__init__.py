"""Tenants: the same tenant migrations in a schema or a database per tenant, run side by side."""
