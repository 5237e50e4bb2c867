"""One module a difficulty; each defines EXPERIMENT."""
