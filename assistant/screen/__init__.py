"""Screen capture: which display server runs, and screenshots from it."""
