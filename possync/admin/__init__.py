"""Admin commands of the `possync` CLI: credentials, settings, status, quarantine and replay."""
