"""Persona -> POS sync: form signups created once as customers in POSaBIT and Flourish (rules, records, service)."""
