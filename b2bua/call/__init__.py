"""Calls: the dial plan, the legs of a call and the call that glues them (pure)."""
