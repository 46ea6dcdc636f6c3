"""Enrollment stream consumer: sales and loyalty balances -> visits, favourite store, membership, points."""
