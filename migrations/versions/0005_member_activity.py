"""conversation list order on memberships

Each membership carries a copy of its conversation's last_activity_at, indexed with the user,
so a user's conversation list is read in order one page at a time.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 10:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('conversation_members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_activity_at', sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE conversation_members SET last_activity_at = ("
        "SELECT conversations.last_activity_at FROM conversations "
        "WHERE conversations.id = conversation_members.conversation_id)"
    )
    with op.batch_alter_table('conversation_members', schema=None) as batch_op:
        batch_op.alter_column('last_activity_at', existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.drop_index('ix_conversation_members_user_id')
        batch_op.create_index(
            'ix_conversation_members_user_activity',
            ['user_id', 'last_activity_at', 'conversation_id'],
            unique=False,
        )


def downgrade():
    with op.batch_alter_table('conversation_members', schema=None) as batch_op:
        batch_op.drop_index('ix_conversation_members_user_activity')
        batch_op.create_index('ix_conversation_members_user_id', ['user_id', 'conversation_id'], unique=False)
        batch_op.drop_column('last_activity_at')
