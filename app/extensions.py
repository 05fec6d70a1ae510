"""Flask extensions, created unbound and bound to the app in ``create_app``."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

import flask_jwt_extended
import flask_smorest
import marshmallow as ma
from flask import current_app
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

    def load_querystring(self, req: Any, schema: ma.Schema) -> Any:
        """Return the query parameters; one that takes a single value, given twice, is a 422.

        Which of ``?before=1&before=9`` a server would use is a guess; refusing it is not.
        Parameters the schema does not know are ignored, as they always are.
        """
        single = {
            field.data_key or name
            for name, field in schema.fields.items()
            if not isinstance(field, ma.fields.List | ma.fields.Tuple)
        }
        repeated = {
            name: ["Given more than once."]
            for name, values in req.args.lists()
            if name in single and len(values) > 1
        }
        if repeated:
            raise ma.ValidationError(repeated)
        return super().load_querystring(req, schema)


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


class JWTManager(flask_jwt_extended.JWTManager):
    """flask-jwt-extended's manager, remembering the access tokens it has verified.

    A client sends the same access token with every request until it expires, and verifying it
    (flask-jwt-extended parses it three times, then checks the HMAC) costs more than the rest of a
    small read. A token string that verified once always decodes to the same claims under the
    same key, so each worker keeps the verified header and claims of recent tokens (a bounded
    LRU keyed by key and token) and checks only the expiry again. Revocation is unaffected: the
    session check runs on every request, cached or not.
    """

    #: Verified tokens kept per worker; about 1 KiB each.
    CACHE_SIZE = 4096

    def __init__(self) -> None:
        super().__init__()
        self._verified: OrderedDict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def verify(self, encoded_token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Return the JOSE header and the claims of a valid token (copies, safe to change).

        Raises what flask-jwt-extended's own verification raises (expired, bad signature,
        malformed...), so its error handlers answer as for any other token failure.
        """
        key = (str(current_app.config["JWT_SECRET_KEY"]), encoded_token)
        with self._lock:
            entry = self._verified.get(key)
            if entry is not None:
                self._verified.move_to_end(key)
        if entry is not None and _unexpired(entry[1], current_app.config["JWT_DECODE_LEEWAY"]):
            return dict(entry[0]), dict(entry[1])
        # Not seen, or expired: the full check, which raises the error a client should see.
        claims = super()._decode_jwt_from_config(encoded_token)
        header = flask_jwt_extended.get_unverified_jwt_headers(encoded_token)
        with self._lock:
            self._verified[key] = (header, claims)
            while len(self._verified) > self.CACHE_SIZE:
                self._verified.popitem(last=False)
        return dict(header), dict(claims)

    def _decode_jwt_from_config(
        self, encoded_token: str, csrf_value: Any = None, allow_expired: bool = False
    ) -> dict[str, Any]:
        if csrf_value is not None or allow_expired:
            return super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        return self.verify(encoded_token)[1]


def _unexpired(claims: dict[str, Any], leeway: Any) -> bool:
    """PyJWT's expiry rule: valid while ``exp > now - leeway`` (no ``exp``: never expires)."""
    exp = claims.get("exp")
    if exp is None:
        return True
    seconds = leeway.total_seconds() if hasattr(leeway, "total_seconds") else float(leeway)
    return bool(exp > time.time() - seconds)


migrate = Migrate()
jwt = JWTManager()
#: Rate limits; storage (Redis or memory), switches and numbers come from the app config.
limiter = Limiter(key_func=get_remote_address, in_memory_fallback_enabled=True)

__all__ = ["Api", "Blueprint", "jwt", "limiter", "migrate"]
