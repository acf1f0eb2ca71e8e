"""Fault campaign: each case a regression test (see docs/reliability.md)."""
