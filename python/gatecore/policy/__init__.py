"""What a caller may do, as data every stage shares: the compiled key policy and the policy fields.

Ground floor: imports no stage and no store, so auth, limits, routing, the ledger and the admin API
can all depend on it.
"""
