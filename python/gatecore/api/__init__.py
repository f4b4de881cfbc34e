"""Wire Structs of the inbound APIs. They declare only the fields policy reads; the rest passes through."""
