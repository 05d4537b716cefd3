"""One click command per module; each exposes `command`."""
