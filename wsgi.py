"""WSGI entry point: ``gunicorn -c gunicorn.conf.py wsgi:app`` and the ``flask`` command."""

from app import create_app

app = create_app()
