"""Prompts as versioned, published APIs: templates, versions and labels, the published route's
stage, A/B splits, chains of steps and system-prompt augmentation (docs/ARCHITECTURE.md)."""
