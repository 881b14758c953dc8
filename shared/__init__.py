"""The project's common package: envelope and events, topics, settings, adapters, health, the worker loop.

Nothing is imported here: the officer's command line uses a few modules without the server's packages.
"""
