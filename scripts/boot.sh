#!/bin/sh
# Container entrypoint: bring the database to the newest migration, then hand over to gunicorn.
set -e
flask db upgrade
exec gunicorn -c gunicorn.conf.py wsgi:app
