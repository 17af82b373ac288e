"""Commands of this group (registered on the shared apps in cli/apps.py)."""
