"""Models: business data loaded from the database (and, later, the object cache)."""
