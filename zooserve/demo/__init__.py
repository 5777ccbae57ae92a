"""Demonstrations that use real trained models (the A/B demo on handwritten digits)."""
