"""dtask-tui: the urwid terminal view of a dtask cluster."""
