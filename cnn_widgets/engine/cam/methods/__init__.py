"""One module per heatmap method; importing this package registers every one of them.

Adding a method is adding a module here that calls
:func:`~cnn_widgets.engine.cam.registry.register` (and its test): the engine, the
GradCAM widget and the command line read the registry.
"""
import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
