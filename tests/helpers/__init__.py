"""Builders shared by the tests: tiny models and datamodules, recorded laws, offline W&B files,
official dataset layouts, independent reference computations, and callbacks that crash or report
their own process (named by class path, ``tests.helpers.<module>.<Class>``, in subprocess runs).

Subprocesses find them through :func:`tests.helpers.processes.helpers_importable`.
"""
