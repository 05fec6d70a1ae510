"""ids of users and sessions are never reused on SQLite

A logged-out access token names its session by id. Without AUTOINCREMENT, SQLite gives a new row
the largest id plus one, so once `flask auth prune` deleted the newest sessions, a new login
could take a dead session's id and bring its old tokens back to life. SQLite can only add
AUTOINCREMENT by rebuilding the table; PostgreSQL's sequences never reuse an id, so nothing
changes there.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 10:00:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

TABLES = ('users', 'auth_sessions', 'refresh_tokens', 'password_resets')


def _rebuild(autoincrement):
    if op.get_bind().dialect.name != 'sqlite':
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate='always', table_kwargs={'sqlite_autoincrement': autoincrement}
        ):
            pass


def upgrade():
    _rebuild(True)


def downgrade():
    _rebuild(False)
