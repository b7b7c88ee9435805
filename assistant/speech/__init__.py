"""Speech output: voices, synthesis, sentence-by-sentence playback."""
