"""The database handle shared by every domain."""

from flask_sqlalchemy import SQLAlchemy

from app.database.base import Base
from app.database.session import ParleySession

db = SQLAlchemy(model_class=Base, session_options={"class_": ParleySession})

__all__ = ["Base", "db"]
