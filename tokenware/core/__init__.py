"""The sans-I/O core: token rules, store operations and flows.

Nothing in this package imports a web framework, a store driver, ``asyncio``,
``anyio`` or ``sqlite3``; ``tests/test_core_purity.py`` enforces it. Time and
randomness come in as arguments.
"""
