"""The framework's core: facts computed once (the database URL, ...) and passed down."""
