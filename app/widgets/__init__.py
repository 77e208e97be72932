"""Generic Qt widgets with no GAN knowledge."""
