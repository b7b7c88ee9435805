"""Audio in and out: devices, capture, endpointing."""
