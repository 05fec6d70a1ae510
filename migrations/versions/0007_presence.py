"""presence: when each user last held an event connection, and whether others may see it

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 12:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMNs (no table rebuild on SQLite, which would drop the users' AUTOINCREMENT).
    op.add_column(
        'users', sa.Column('show_presence', sa.Boolean(), server_default=sa.true(), nullable=False)
    )
    op.add_column('users', sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    # SQLite rebuilds the table to drop a column: keep its AUTOINCREMENT (0006).
    with op.batch_alter_table('users', table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.drop_column('last_seen_at')
        batch_op.drop_column('show_presence')
