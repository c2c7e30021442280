"""lungcl: continual learning on LIDC-IDRI lung-nodule characteristics."""

__version__ = "0.1.0"
