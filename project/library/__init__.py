"""A tiny app with related models, for the claims about the ORM in async code."""
