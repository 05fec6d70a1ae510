"""Flask extensions, created unbound and bound to the app in ``create_app``."""

from __future__ import annotations

from typing import Any

import flask_smorest
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from webargs.core import missing
from webargs.flaskparser import FlaskParser

from app.core.errors import PROBLEM_JSON
from app.schemas.problem_schema import ProblemSchema


class ParleyParser(FlaskParser):
    """Read JSON bodies from Flask's cache, already parsed and checked before the view."""

    def _raw_load_json(self, req: Any) -> Any:
        if not req.is_json or not req.get_data(cache=True):
            return missing
        return req.get_json(cache=True)


class Api(flask_smorest.Api):
    """flask-smorest's Api, documenting every error as problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self) -> None:
        # The shared error responses are problem+json; successful ones stay application/json.
        self.DEFAULT_RESPONSE_CONTENT_TYPE = PROBLEM_JSON
        try:
            super()._register_responses()
        finally:
            del self.DEFAULT_RESPONSE_CONTENT_TYPE


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest blueprint using Parley's request parser."""

    ARGUMENTS_PARSER = ParleyParser()


migrate = Migrate()
jwt = JWTManager()
#: Rate limits; storage (Redis or memory), switches and numbers come from the app config.
limiter = Limiter(key_func=get_remote_address, in_memory_fallback_enabled=True)

__all__ = ["Api", "Blueprint", "jwt", "limiter", "migrate"]
