"""Form signups: the endpoint a retailer's web form posts to (API keys, request rules, the persona it makes)."""
