"""Flask extensions, created unbound and bound to the app in ``create_app``."""

from __future__ import annotations

from typing import Any

import flask_smorest
import marshmallow as ma
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from webargs.core import missing
from webargs.flaskparser import FlaskParser

from app.library_overrides import CachingJWTManager, ProblemJsonApi


class ParleyParser(FlaskParser):
    """Read JSON bodies as parsed and checked before the view; refuse repeated query values."""

    def load_json(self, req: Any, schema: ma.Schema) -> Any:
        """Return the JSON body (parsed by ``app.core.http``, cached by Flask), or ``missing``."""
        if not req.is_json or not req.get_data(cache=True):
            return missing
        return req.get_json()

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


#: OpenAPI security requirement of the operations that need a token.
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"oauth2": []}]


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest blueprint using Parley's request parser, documenting token requirements.

    A view guarded by ``app.api.security.auth_required`` (marked ``requires_token``) is
    documented with the bearer security requirement when its route is registered.
    """

    ARGUMENTS_PARSER = ParleyParser()

    def route(self, rule: str, *, parameters: Any = None, **options: Any) -> Any:
        """Register a view; a token-guarded one is documented as needing a token."""
        register = super().route(rule, parameters=parameters, **options)

        def decorator(view: Any) -> Any:
            if getattr(view, "requires_token", False):
                view = self.doc(security=BEARER)(view)
            return register(view)

        return decorator


Api = ProblemJsonApi
migrate = Migrate()
jwt = CachingJWTManager()
#: Rate limits; storage (Redis or memory), switches and numbers come from the app config.
limiter = Limiter(key_func=get_remote_address, in_memory_fallback_enabled=True)

__all__ = ["Api", "Blueprint", "jwt", "limiter", "migrate"]
