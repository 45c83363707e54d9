"""urwid widgets of the TUI: they read TuiState when rendering and never change it."""
