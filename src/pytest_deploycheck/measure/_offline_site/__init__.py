"""A directory put first on an ``offline`` service's PYTHONPATH (see measure.service).

Python imports its ``sitecustomize`` module at start-up, before the service's own code.
"""
