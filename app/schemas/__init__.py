"""Marshmallow schemas: request bodies, query strings and responses."""
