"""Wire messages and their strict msgpack codec."""
