"""The asyncio shell: the only place with sockets, clocks, signals and tasks."""
