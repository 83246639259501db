"""Test helpers: a real dev stack on free ports and real Fulcrum processes."""
