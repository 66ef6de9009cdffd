"""The labelling loop's Lambdas: one module per state machine Task (docs/stack.md, lambdas/README.md)."""
