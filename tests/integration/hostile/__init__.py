"""Pulls against POS servers written apart from the simulators (servers.py), one test module per vendor."""
