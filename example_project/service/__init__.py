"""The example's image-classification service (``python -m service.app --port N``).

``app`` is the HTTP front end, ``batcher`` the dynamic batcher it hands crops to.
"""
