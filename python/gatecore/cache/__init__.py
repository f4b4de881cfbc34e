"""The response cache (issue 19): a stage of the chain that answers repeated requests from a store,
isolated per namespace (team, key or global) by the key itself."""
