"""Pure, IO-free channel state machines: events in, (new state, effects) out."""
