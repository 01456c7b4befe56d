"""Generic inputs below every corpus: media decoding, log-mel features, text and vocabularies,
augmentation, clip tensors, the noisy-log-mel policy, GRID's grammar and the batch contract."""
