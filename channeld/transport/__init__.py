"""BOLT 8 encrypted, authenticated peer sessions over TCP on trio."""
