"""All SQL lives here: functions query, add and flush, and never commit."""
