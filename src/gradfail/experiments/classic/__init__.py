"""The classic difficulties: depth, vanishing and exploding gradients, saddles, optimiser choice, under- and over-fitting."""
