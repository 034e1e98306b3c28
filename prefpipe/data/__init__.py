"""Reading users' own prompt files."""
