"""The database handle shared by every domain."""

from flask_sqlalchemy import SQLAlchemy

from app.database.base import Base

db = SQLAlchemy(model_class=Base)

__all__ = ["Base", "db"]
