"""The server as a process: `serve` runs the app on a socket over a resolved backend until a
signal; `supervisor` runs N such processes on one port and restarts the ones that die."""
