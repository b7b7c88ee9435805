"""The listening service: one asyncio loop from the microphone to spoken answers."""
