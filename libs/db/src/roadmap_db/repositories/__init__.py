"""Repositories: the queries the services run, one module per aggregate."""
