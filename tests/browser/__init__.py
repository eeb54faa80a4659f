"""Real-browser tests: widgets displayed in JupyterLab 4 and Notebook 7, driven by headless Chromium.

A package so that the helpers module is imported as ``browser.jupyter`` (or
``tests.browser.jupyter``) and never shadows jupyter_core's top-level ``jupyter`` module.
"""
