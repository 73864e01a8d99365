"""The framework's core: the pieces the verbs are built from."""
