"""Latent operations (rendering, editing, directions, projection, alignment) and the CLI. No Qt."""
