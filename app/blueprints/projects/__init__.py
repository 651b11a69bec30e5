from .views import bp
from . import people  # noqa: F401  (its routes are on bp)

__all__ = ["bp"]
