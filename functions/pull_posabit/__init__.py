"""POSaBIT (Venue API v3): contract, client, pure mapping and connector; the Lambda handler lives beside them."""
