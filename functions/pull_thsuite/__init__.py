"""THSuite (read-only): ASSUMED REST contract, client, pure mapping and connector; see CONTRACT.md."""
