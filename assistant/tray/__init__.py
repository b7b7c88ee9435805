"""The tray icon: state out of the loop, commands into it."""
