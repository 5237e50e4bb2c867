"""The notes' open questions: tied vs untied weights, skipping flat regions, designed first layers, cost-function penalties."""
