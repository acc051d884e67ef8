"""The model stage: encoders (registry of variants), pairs, fusion and the offline checkpoints."""
