"""One CDK construct per concern: storage, pulls, monitoring (and the shared function and permission helpers)."""
